"""The one exception type the bundle tool raises for problems an operator can fix."""


class BundleError(Exception):
    """A build, layout or packing problem; the message names what failed and the fix."""
