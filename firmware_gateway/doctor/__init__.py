"""`warmcard doctor`: checks a kiosk part by part and says, for each failure, how to fix it.

Checks: config, reader (open, firmware, live tap), LEDs and buzzer, clock, outbox disk, broker,
registration in the cloud (config and roster received); the kiosk adds its screen and speaker
(`kiosk.doctor_checks`), since this package never imports the kiosk.
Every dependency that touches the world (reader factory, GPIO, clocks, NTP probe, disk) is
passed in through `DoctorDeps` (`deps`), so tests run it without hardware. The checks are in
`checks` and `broker`, their results in `results`, the run and the command in `run`.
"""

from firmware_gateway.doctor.broker import REGISTRATION, check_broker, check_cloud
from firmware_gateway.doctor.checks import (
    EARLIEST_PLAUSIBLE,
    check_clock,
    check_config,
    check_disk,
    check_feedback,
    check_reader,
)
from firmware_gateway.doctor.deps import PIN_TEST, DiskUsage, DoctorDeps, ntp_synchronized
from firmware_gateway.doctor.results import CheckResult, Status
from firmware_gateway.doctor.run import DEFAULT_CONFIG, ExtraCheck, register, run_doctor

__all__ = [
    "DEFAULT_CONFIG",
    "EARLIEST_PLAUSIBLE",
    "PIN_TEST",
    "REGISTRATION",
    "CheckResult",
    "DiskUsage",
    "DoctorDeps",
    "ExtraCheck",
    "Status",
    "check_broker",
    "check_clock",
    "check_cloud",
    "check_config",
    "check_disk",
    "check_feedback",
    "check_reader",
    "ntp_synchronized",
    "register",
    "run_doctor",
]
