"""The typed errors of the IPFS area, one class per failure a caller handles differently."""

from __future__ import annotations


class IpfsError(Exception):
    """Base class of every error raised by `offchain.ipfs`."""


class IpfsUnavailable(IpfsError):
    """The IPFS node cannot be reached (refused, reset, 502/503/504) after the retries."""


class IpfsNotFound(IpfsError):
    """The node does not have the content and could not find it within the node-side timeout."""


class IpfsTooLarge(IpfsError):
    """The content is larger than the byte cap the caller set."""


class IpfsTimeout(IpfsError):
    """The node did not answer within the client's timeout."""


class CidMismatch(IpfsError):
    """Bytes read from IPFS do not hash to the CID they were asked for: never use them."""


class InvalidCid(IpfsError, ValueError):
    """A value is not a CID this project accepts (sha2-256; dag-pb or raw; v0 or v1)."""


class IpfsNodeError(IpfsError):
    """The local development node could not be installed, initialised, started or stopped."""
