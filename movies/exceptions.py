"""Errors the movies services raise; views map them to form errors or HTTP 400."""


class MoviesError(Exception):
    """Base class for the movies app's expected failures."""


class InvalidRating(MoviesError):
    pass


class UnknownMovie(MoviesError):
    pass
