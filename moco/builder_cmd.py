"""The published module name of the CMD builder (`import moco.builder_cmd`; `moco.builder_cmd.MoCo(...)`),
so that code written against the published repository imports it unchanged. The constructor is
`moco.builder.MoCo`."""

from moco.builder import MoCo

__all__ = ["MoCo"]
