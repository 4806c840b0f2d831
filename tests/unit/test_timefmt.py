import pytest

from orchestrator.timefmt import format_ms, parse_clock, parse_duration_ms, parse_rfc3339, to_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [("45s", 45_000), ("30m", 1_800_000), ("2h", 7_200_000), ("7d", 604_800_000), ("1h30m", 5_400_000),
     ("1d2h3m4s", 93_784_000)],
)  # fmt: skip
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["30x", "", "m", "30", "1.5h", "30m1h", "-5m", " h "])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"bad duration .* e\.g\. 45s, 30m"):
        parse_duration_ms(text)


def test_clock_accepts_yaml_base60_integers() -> None:
    assert parse_clock("08:30") == (8, 30)
    assert parse_clock(600) == (10, 0)  # YAML 1.1 reads an unquoted 10:00 as 600
    with pytest.raises(ValueError, match="'25:00'"):
        parse_clock(1500)


def test_rfc3339_needs_an_offset_and_round_trips_in_utc() -> None:
    assert format_ms(to_ms(parse_rfc3339("2026-03-02T11:00:00+01:00"))) == "2026-03-02T10:00:00Z"
    assert format_ms(to_ms(parse_rfc3339("2026-03-02T10:00:00.250Z"))) == "2026-03-02T10:00:00.250Z"
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_rfc3339("2026-03-02T10:00:00")
    with pytest.raises(ValueError, match="not an RFC 3339"):
        parse_rfc3339("yesterday")
