"""PN532 framing and response parsing against exact byte frames (UM0701-02, PN532 user manual)."""

from __future__ import annotations

import pytest

from firmware_gateway.pn532 import frames
from firmware_gateway.pn532.device import TargetA, parse_list_passive_106a
from firmware_gateway.pn532.errors import FrameError

H = bytes.fromhex

# GetFirmwareVersion, command and PN532 v1.6 response (UM0701-02 §7.2.2 and §6.2.1 example).
GET_FW_CMD = H("00 00 FF 02 FE D4 02 2A 00")
GET_FW_RESP = H("00 00 FF 06 FA D5 03 32 01 06 07 E8 00")
# SAMConfiguration normal mode, timeout 0x14, IRQ on (UM0701-02 §7.2.10 example).
SAM_CMD = H("00 00 FF 05 FB D4 14 01 14 01 02 00")
# InListPassiveTarget, 1 target, 106 kbps type A.
LIST_CMD = H("00 00 FF 04 FC D4 4A 01 00 E1 00")
# Its answer for a MIFARE Classic 1K, UID 04 A1 B2 C3 (as libnfc 1.8 decodes it).
LIST_RESP = H("00 00 FF 0C F4 D5 4B 01 01 00 04 08 04 04 A1 B2 C3 B4 00")


class TestEncode:
    def test_get_firmware_version_command(self) -> None:
        assert frames.encode_command(b"\x02") == GET_FW_CMD

    def test_sam_configuration_command(self) -> None:
        assert frames.encode_command(H("14 01 14 01")) == SAM_CMD

    def test_in_list_passive_target_command(self) -> None:
        assert frames.encode_command(H("4A 01 00")) == LIST_CMD

    def test_response(self) -> None:
        assert frames.encode_response(H("03 32 01 06 07")) == GET_FW_RESP

    def test_extended_frame(self) -> None:
        data = bytes(range(256)) + bytes(9)  # 265 data bytes + TFI = 266 > 255
        raw = frames.encode_command(data)
        assert raw[:8] == H("00 00 FF FF FF 01 0A F5")
        assert raw[-1] == 0x00 and frames.checksum(raw[8:-1]) == 0
        assert frames.decode(raw) == frames.Frame(frames.Kind.INFO, 0xD4, data)

    def test_too_long(self) -> None:
        with pytest.raises(FrameError):
            frames.encode_command(bytes(266))


class TestDecode:
    def test_firmware_response(self) -> None:
        f = frames.decode(GET_FW_RESP)
        assert (f.kind, f.tfi, f.data, f.command) == (
            frames.Kind.INFO,
            0xD5,
            H("03 32 01 06 07"),
            3,
        )

    def test_ack_nack_error(self) -> None:
        assert H("00 00 FF 00 FF 00") == frames.ACK
        assert H("00 00 FF FF 00 00") == frames.NACK
        assert H("00 00 FF 01 FF 7F 81 00") == frames.ERROR
        assert frames.decode(frames.ACK).kind is frames.Kind.ACK
        assert frames.decode(frames.NACK).kind is frames.Kind.NACK
        assert frames.decode(frames.ERROR).kind is frames.Kind.ERROR

    @pytest.mark.parametrize(
        "raw",
        [
            H("00 00 FF 06 FA D5 03 32 01 06 07 E9 00"),  # DCS off by one
            H("00 00 FF 06 FB D5 03 32 01 06 07 E8 00"),  # LCS wrong
            H("00 00 FF 06 FA D5 03 32 01 06 07 E8 01"),  # postamble not 00
            H("00 00 FF 06 FA D5 03 32"),  # torn
        ],
    )
    def test_corrupt_frames_are_refused(self, raw: bytes) -> None:
        with pytest.raises(FrameError):
            frames.decode(raw)


class TestStreamingDecoder:
    def test_resyncs_after_garbage_and_splits(self) -> None:
        d = frames.FrameDecoder()
        stream = H("55 55 00 00 13 37 FF") + frames.ACK + H("00 FF 06 FB") + GET_FW_RESP + LIST_RESP
        got = []
        for i in range(len(stream)):  # one byte at a time, as a slow UART delivers them
            d.feed(stream[i : i + 1])
            while (f := d.next_frame()) is not None:
                got.append(f)
        assert [f.kind for f in got] == [frames.Kind.ACK, frames.Kind.INFO, frames.Kind.INFO]
        assert got[1].data == H("03 32 01 06 07")
        assert d.errors == ["bad LCS fb for LEN 06"]

    def test_bad_dcs_dropped_then_next_frame_read(self) -> None:
        d = frames.FrameDecoder()
        d.feed(H("00 00 FF 06 FA D5 03 32 01 06 07 00 00") + GET_FW_RESP)
        f = d.next_frame()
        assert f is not None and f.data == H("03 32 01 06 07")
        assert len(d.errors) == 1 and d.errors[0].startswith("bad DCS")


class TestInListPassiveTarget:
    def test_four_byte_uid(self) -> None:
        data = frames.decode(LIST_RESP).data[1:]
        assert parse_list_passive_106a(data) == [TargetA(1, H("00 04"), 0x08, H("04 A1 B2 C3"))]

    def test_seven_byte_uid(self) -> None:
        (t,) = parse_list_passive_106a(H("01 01 00 44 00 07 04 11 22 33 44 55 66"))
        assert (t.uid, t.sel_res) == ("04112233445566", 0x00)

    def test_ten_byte_uid(self) -> None:
        (t,) = parse_list_passive_106a(H("01 01 00 84 08 0A 01 02 03 04 05 06 07 08 09 0A"))
        assert t.uid == "0102030405060708090A"

    def test_iso14443_4_card_with_ats(self) -> None:
        # DESFire EV1: ATQA 03 44, SAK 20, 7-byte UID, ATS 06 75 77 81 02 80 (TL counts itself)
        (t,) = parse_list_passive_106a(
            H("01 01 03 44 20 07 04 11 22 33 44 55 66 06 75 77 81 02 80")
        )
        assert (t.uid, t.ats) == ("04112233445566", H("75 77 81 02 80"))

    def test_no_target(self) -> None:
        assert parse_list_passive_106a(b"\x00") == []

    def test_bad_uid_length(self) -> None:
        with pytest.raises(FrameError):
            parse_list_passive_106a(H("01 01 00 04 08 05 01 02 03 04 05"))
