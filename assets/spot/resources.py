"""How spot symbols are discovered: the explicit list (the only way to reach delisted pairs) and the probe."""

from __future__ import annotations

import dagster as dg

from pipeline.settings import Settings
from pipeline.spot.discovery import ProbeMode

PROBE_MODES: dict[str, ProbeMode] = {"auto": "auto", "full": True, "targeted": "targeted", "off": False}


class SpotResource(dg.ConfigurableResource):
    symbols: list[str]  # ORDERLAKE_SPOT_SYMBOLS
    probe: str  # ORDERLAKE_SPOT_PROBE: auto | full | targeted | off

    @classmethod
    def from_settings(cls, settings: Settings) -> SpotResource:
        return cls(symbols=list(settings.spot_symbols), probe=settings.spot_probe)

    @property
    def explicit(self) -> list[str]:
        return sorted(set(self.symbols))

    @property
    def probe_mode(self) -> ProbeMode:
        try:
            return PROBE_MODES[self.probe]
        except KeyError:
            choices = ", ".join(PROBE_MODES)
            raise ValueError(f"ORDERLAKE_SPOT_PROBE must be one of {choices}, not {self.probe!r}") from None
