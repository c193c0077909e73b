"""The one exception type the `nqm` package raises for bad input."""


class NQMInputError(ValueError):
    """Bad user input: the message names the field (and index) that is wrong."""
