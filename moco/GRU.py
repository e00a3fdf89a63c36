"""The published module name of the encoder (`from moco.GRU import BIGRU`), so that code written against
the published repository imports it unchanged. The encoder is `moco.encoder.BIGRU`."""

from moco.encoder import BIGRU

__all__ = ["BIGRU"]
