"""`python -m sandbox`: serve the sandbox platform on FINBOT_SANDBOX_PORT."""

from sandbox.app import run

if __name__ == "__main__":
    run()
