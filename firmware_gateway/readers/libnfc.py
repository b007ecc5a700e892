"""`libnfc:<connstring>`: any reader libnfc drives, e.g. `libnfc:pn532_uart:/dev/ttyUSB0:115200`.

Goes through pynfc's ctypes bindings of libnfc, but not through pynfc's `Nfc.poll`: that one
blocks until a card comes (nfc_initiator_poll_target with 255 periods) and its `Timeout` helper
"cancels" calls by raising SystemExit asynchronously in the worker thread while libnfc is still
inside the C call and the UART, which leaves the device mid-command. Instead each poll makes
bounded raw calls in the caller's thread: with NP_INFINITE_SELECT off, libnfc sends one
InListPassiveTarget with MaxRetries 0x02 and a 300 ms timeout, so
nfc_initiator_select_passive_target returns within that time whether or not a card is there.
Between attempts the driver sleeps `interval` s: that bounds CPU and UART traffic, at the cost of
up to `interval` s of tap latency. A card counts as removed after `removal_misses` empty
selects in a row; until then the same UID is not reported again.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from typing import Any

from firmware_gateway.clock import Monotonic
from firmware_gateway.errors import UnknownReaderSpec
from firmware_gateway.readers.base import PollingReader
from warmcard.contract import ReaderState

log = logging.getLogger(__name__)


class _Libnfc:
    """libnfc's C functions with prototypes of our own, leaving pynfc's module-level ones alone."""

    def __init__(self) -> None:
        from pynfc import nfc  # loads libfreefare, which links libnfc

        self.nfc = nfc
        lib = nfc._libraries["libfreefare.so"]
        ctx_p = ctypes.POINTER(nfc.struct_nfc_context)
        dev_p = ctypes.POINTER(nfc.struct_nfc_device)

        def fn(name: str, restype: Any, *argtypes: Any) -> Any:
            f = lib[name]  # indexing makes a fresh function object: pynfc's stays untouched
            f.restype, f.argtypes = restype, list(argtypes)
            return f

        self.init = fn("nfc_init", None, ctypes.POINTER(ctx_p))
        self.exit = fn("nfc_exit", None, ctx_p)
        self.open = fn("nfc_open", dev_p, ctx_p, ctypes.c_char_p)
        self.close = fn("nfc_close", None, dev_p)
        self.initiator_init = fn("nfc_initiator_init", ctypes.c_int, dev_p)
        self.set_property_bool = fn(
            "nfc_device_set_property_bool", ctypes.c_int, dev_p, ctypes.c_int, ctypes.c_bool
        )
        self.select_passive_target = fn(
            "nfc_initiator_select_passive_target",
            ctypes.c_int,
            dev_p,
            nfc.nfc_modulation,
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.POINTER(nfc.nfc_target),
        )
        self.deselect_target = fn("nfc_initiator_deselect_target", ctypes.c_int, dev_p)
        self.strerror = fn("nfc_strerror", ctypes.c_char_p, dev_p)


_lib: _Libnfc | None = None
_lib_lock = threading.Lock()


def _libnfc() -> _Libnfc:
    global _lib
    with _lib_lock:
        if _lib is None:
            _lib = _Libnfc()
        return _lib


def parse_spec(spec: str) -> str:
    """`libnfc:pn532_uart:/dev/ttyUSB0:115200` → the libnfc connstring after `libnfc:`."""
    scheme, _, connstring = spec.partition(":")
    if scheme != "libnfc" or not connstring:
        raise UnknownReaderSpec(
            f"reader {spec!r}: expected libnfc:<connstring>, e.g. libnfc:pn532_uart:/dev/ttyUSB0"
        )
    return connstring


class LibnfcReader(PollingReader):
    """ISO14443A UIDs through libnfc; reopens the device by itself after errors."""

    def __init__(
        self,
        spec: str,
        *,
        interval: float = 0.05,
        removal_misses: int = 2,
        retry_interval: float = 1.0,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        super().__init__(spec, monotonic=monotonic, retry_interval=retry_interval)
        self.connstring = parse_spec(spec)
        self.interval = interval
        self.removal_misses = removal_misses
        self._lib = _libnfc()
        nfc = self._lib.nfc
        self._ctx = ctypes.POINTER(nfc.struct_nfc_context)()
        self._lib.init(ctypes.byref(self._ctx))
        if not self._ctx:
            raise MemoryError("nfc_init failed")
        self._dev: Any = None
        self._modulation = nfc.nfc_modulation(nmt=nfc.NMT_ISO14443A, nbr=nfc.NBR_106)
        self._held: str | None = None
        self._misses = 0
        self._errors = 0
        self._next_select = 0.0

    def close(self) -> None:
        super().close()
        if self._ctx:
            self._lib.exit(self._ctx)
            self._ctx = ctypes.POINTER(self._lib.nfc.struct_nfc_context)()

    # ---- the driver's part of PollingReader -------------------------------------------------

    def _is_open(self) -> bool:
        return self._dev is not None

    def _next_read_at(self) -> float:
        return self._next_select

    def _open(self) -> None:
        lib, nfc = self._lib, self._lib.nfc
        dev = lib.open(self._ctx, self.connstring.encode())
        if not dev:
            self._unavailable(self._missing_state())
            log.debug("nfc_open(%s) failed: %s", self.connstring, self._state.value)
            return
        # Initiator mode, RF on; NP_INFINITE_SELECT off makes every select a bounded call.
        if (
            lib.initiator_init(dev) < 0
            or lib.set_property_bool(dev, nfc.NP_INFINITE_SELECT, False) < 0
        ):
            log.warning("libnfc %s: init failed: %s", self.connstring, lib.strerror(dev))
            lib.close(dev)
            self._unavailable(ReaderState.FAULT)
            return
        self._dev = dev
        # `_held` survives a reopen: a card left on the reader through a glitch is not a new tap.
        self._misses, self._errors = 0, 0
        if self._state is not ReaderState.OK:
            log.info("libnfc %s ready", self.connstring)
        self._ready()

    def _read(self, remaining: float) -> str | None:
        # nfc_initiator_select_passive_target is bounded by libnfc itself (see module doc).
        return self._select_once()

    # ---- internals -------------------------------------------------------------------------

    def _missing_state(self) -> ReaderState:
        # pn532_uart:/dev/ttyUSB0:115200 — a missing device node means unplugged.
        parts = self.connstring.split(":")
        if len(parts) > 1 and parts[1].startswith("/dev/") and not os.path.exists(parts[1]):
            return ReaderState.ABSENT
        return ReaderState.FAULT

    def _close_device(self) -> None:
        if self._dev is not None:
            self._lib.close(self._dev)
            self._dev = None

    def _select_once(self) -> str | None:
        lib = self._lib
        target = lib.nfc.nfc_target()
        n = lib.select_passive_target(self._dev, self._modulation, None, 0, ctypes.byref(target))
        self._next_select = self._monotonic() + self.interval
        if n < 0:
            self._errors += 1
            log.warning(
                "libnfc %s: select failed (%d): %s", self.connstring, n, lib.strerror(self._dev)
            )
            # One error is a garbled frame; two in a row mean the reader is gone: reopen it.
            if self._errors >= 2:
                self._lost(ReaderState.FAULT)
            return None
        self._errors = 0
        if n == 0:
            self._misses += 1
            if self._misses >= self.removal_misses:
                self._held = None
            return None
        nai = target.nti.nai
        uid = bytes(nai.abtUid[: nai.szUidLen]).hex().upper()
        # Let go of the card so the next select sees it afresh (libnfc sends InDeselect).
        lib.deselect_target(self._dev)
        self._misses = 0
        if uid == self._held:
            return None
        self._held = uid
        return uid
