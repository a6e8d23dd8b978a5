"""The exceptions forecaster raises for problems a user can fix."""


class ForecasterError(Exception):
    """A problem with the user's input or files; the message says what and how to fix it."""


class DataError(ForecasterError):
    """A CSV file that cannot be used as it is."""


class ConfigError(ForecasterError):
    """Options or settings that are out of range or inconsistent."""


class UsageError(ConfigError):
    """An option missing, malformed or out of range: exit code 2, like any usage error."""


class BundleError(ForecasterError):
    """A run directory or exported bundle that is missing, corrupt or incompatible."""


class ExportError(ForecasterError):
    """A conversion to LiteRT that failed or produced a model that is not accurate enough."""
