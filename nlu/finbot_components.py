"""finbot's custom Rasa NLU components (loaded by Rasa from `nlu/`, see nlu/config.yml).

BlendedIntentClassifier runs after DIETClassifier. It trains a multinomial logistic regression
on the same bag-of-n-grams sentence features and blends its probabilities with DIET's ranking:

    p(intent) = weight * p_linear(intent) + (1 - weight) * p_diet(intent)

Why: on this data a linear model over the sparse features generalises better than DIET alone
(cross-validation on the training split), while DIET still helps on word order; the blend beats
both. The linear model trains in well under a minute on 2 cores. Its weights are stored as
plain numpy arrays (no pickle), so loading a model file never executes code.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

_WEIGHTS_FILE = "linear.npz"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class BlendedIntentClassifier(IntentClassifier, GraphComponent):
    """Logistic regression on sparse sentence features, blended with the previous ranking."""

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Featurizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 10.0,  # inverse L2 strength
            "max_iter": 400,
            "class_weight": None,  # or "balanced"
            "weight": 0.5,  # share of the linear model in the blend (1.0 = linear only)
            "ranking_length": 10,
            "random_state": 7,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        classes: Optional[np.ndarray] = None,
        coef: Optional[np.ndarray] = None,
        intercept: Optional[np.ndarray] = None,
    ) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.classes = classes
        self.coef = coef
        self.intercept = intercept

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "BlendedIntentClassifier":
        return cls(config, model_storage, resource)

    # ------------------------------------------------------------------ features

    @staticmethod
    def _features(messages: List[Message]) -> scipy.sparse.csr_matrix:
        rows = []
        for message in messages:
            _, sentence = message.get_sparse_features(TEXT)
            if sentence is None:
                raise ValueError("BlendedIntentClassifier needs sparse sentence features")
            rows.append(scipy.sparse.csr_matrix(sentence.features))
        matrix = scipy.sparse.vstack(rows).tocsr()
        # log-scaled counts: repeated characters should not dominate a short message
        matrix.data = np.log1p(matrix.data)
        return matrix

    # ------------------------------------------------------------------ training

    def train(self, training_data: TrainingData) -> Resource:
        from sklearn.linear_model import LogisticRegression

        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        if not examples:
            return self._resource
        X = self._features(examples)
        y = [e.get(INTENT) for e in examples]
        clf = LogisticRegression(
            C=float(self.config["C"]),
            max_iter=int(self.config["max_iter"]),
            class_weight=self.config["class_weight"],
            random_state=self.config["random_state"],
        )
        clf.fit(X, y)
        self.classes = np.asarray(clf.classes_, dtype=str)
        self.coef = clf.coef_.astype(np.float32)
        self.intercept = clf.intercept_.astype(np.float32)
        self.persist()
        return self._resource

    def persist(self) -> None:
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(
                directory / _WEIGHTS_FILE,
                classes=self.classes,
                coef=self.coef,
                intercept=self.intercept,
            )

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "BlendedIntentClassifier":
        try:
            with model_storage.read_from(resource) as directory:
                with np.load(directory / _WEIGHTS_FILE, allow_pickle=False) as data:
                    return cls(
                        config, model_storage, resource,
                        data["classes"], data["coef"], data["intercept"],
                    )  # fmt: skip
        except (ValueError, FileNotFoundError):
            logger.warning("BlendedIntentClassifier: no trained weights; passing DIET through")
            return cls(config, model_storage, resource)

    # ------------------------------------------------------------------ inference

    def _linear_probabilities(self, messages: List[Message]) -> np.ndarray:
        scores = self._features(messages) @ self.coef.T + self.intercept
        scores = np.asarray(scores, dtype=np.float64)
        scores -= scores.max(axis=1, keepdims=True)
        exp = np.exp(scores)
        return exp / exp.sum(axis=1, keepdims=True)

    def process(self, messages: List[Message]) -> List[Message]:
        if self.coef is None or not messages:
            return messages
        weight = float(self.config["weight"])
        probabilities = self._linear_probabilities(messages)
        index = {name: i for i, name in enumerate(self.classes)}
        for message, linear in zip(messages, probabilities):
            blended = weight * linear
            for entry in message.get("intent_ranking") or []:
                i = index.get(entry.get(INTENT_NAME_KEY))
                if i is not None:
                    blended[i] += (1.0 - weight) * float(entry.get(PREDICTED_CONFIDENCE_KEY, 0.0))
            order = np.argsort(-blended)[: int(self.config["ranking_length"])]
            ranking = [
                {INTENT_NAME_KEY: str(self.classes[i]), PREDICTED_CONFIDENCE_KEY: float(blended[i])}
                for i in order
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            message.set("intent_ranking", ranking, add_to_output=True)
        return messages
