"""An offline Encord: the official ``encord`` SDK talks to it over real HTTP with real signed requests."""

from encord_sandbox.server import Sandbox

__all__ = ["Sandbox"]
