"""Typed errors: each one is the user's to fix and carries a message saying how."""


class ImagefitError(Exception):
    """A problem with the user's input; the CLI prints it in one line and exits with code 2."""


class DataError(ImagefitError):
    """A dataset folder or file is missing, empty or laid out in a way imagefit cannot read."""


class ModelError(ImagefitError):
    """A backbone name, weights file or run folder cannot be used."""


class OptionError(ImagefitError):
    """An option value is out of range or contradicts another option."""


class WriteError(ImagefitError):
    """A file cannot be written: the disk is full, or the folder is not writable."""
