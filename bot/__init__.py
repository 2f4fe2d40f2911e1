"""finbot: the customer front end of an online wealth-management platform."""
