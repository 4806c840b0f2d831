"""`validate`'s messages: every problem with its file, line and step, in words."""

from pathlib import Path

import pytest

from orchestrator.contract.loader import load

VALID = """\
id: cart
trigger: {event: cart_add}
steps:
  - wait: 30m
  - send: {channel: email, template: reminder}
"""


def problems(tmp_path: Path, text: str, name: str = "j.yaml") -> list[str]:
    (tmp_path / name).write_text(text)
    return [str(p) for p in load([tmp_path]).problems]


def test_a_valid_journey_has_no_problem(tmp_path: Path) -> None:
    (tmp_path / "j.yaml").write_text(VALID)
    loaded = load([tmp_path])
    assert loaded.ok and [j.id for j in loaded.journeys] == ["cart"]
    assert loaded.policy_file is None and loaded.policy.consent_required == ("email", "sms", "push")


def test_the_shipped_journeys_are_valid() -> None:
    loaded = load([Path(__file__).parents[2] / "journeys"])
    assert loaded.problems == []
    assert {j.id for j in loaded.journeys} >= {"abandoned-cart", "web-to-store", "post-purchase", "welcome"}
    assert loaded.policy_file is not None


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        ("  - wait: 30m", "  - pause: 30m", "j.yaml:4: steps.0: unknown step type 'pause'"),
        ("wait: 30m", "wait: 30x", "j.yaml:4: steps.0.wait: bad duration '30x'"),
        ("wait: 30m", "wait: 30", "j.yaml:4: steps.0.wait: bad duration 30: add a unit"),
        ("{channel: email, template: reminder}", "{template: reminder}",
         "j.yaml:5: steps.1.send: missing required field 'channel'"),
        ("{event: cart_add}", "{event: cart_add, where: {event.channel: {like: web}}}",
         "j.yaml:2: trigger.where: unknown operator 'like'"),
        ("{event: cart_add}", "{event: cart_add, where: {cart.value: 1}}",
         "j.yaml:2: trigger.where: unknown path root 'cart'"),
        ("id: cart", "id: Cart Reminder", "j.yaml:1: id: bad journey id 'Cart Reminder'"),
        ("trigger:", "trigger:\nholdout: lots\ntriger:", "j.yaml:3: holdout: bad percentage 'lots'"),
        ("template: reminder}", "template: reminder, chanel: sms}",
         "j.yaml:5: steps.1.send: unknown field 'chanel' (did you mean 'channel'?)"),
        ("  - wait: 30m", "  - split: [{weight: 0, steps: [exit]}, {weight: 1, steps: []}]",
         "j.yaml:4: steps.0.split.0.weight: input should be greater than 0"),
        ("  - wait: 30m", "  - wait_until: {time: \"25:00\"}", "j.yaml:4: steps.0.wait_until.time: bad time of day"),
        ("  - wait: 30m", "  - {wait: 1m, send: {channel: sms, template: t}}",
         "j.yaml:4: steps.0: a step has exactly one type, this one has wait and send"),
        ("steps:", "reentry: sometimes\nsteps:", "j.yaml:3: reentry: bad reentry 'sometimes'"),
        ("steps:", "priority: 101\nsteps:", "j.yaml:3: priority: input should be less than or equal to 100"),
    ],
)  # fmt: skip
def test_problems_name_file_line_step_and_cause(tmp_path: Path, replace: str, by: str, expected: str) -> None:
    assert replace in VALID
    found = problems(tmp_path, VALID.replace(replace, by, 1))
    assert any(str(tmp_path / expected.split(":", 1)[0]) + ":" + expected.split(":", 1)[1] in p for p in found), found


def test_nested_steps_are_located(tmp_path: Path) -> None:
    text = (
        VALID
        + """\
  - wait_for: {event: store_visit, timeout: 3d}
    on_timeout:
      - send: {channel: push, template: last-call}
      - if: {profile.tier: gold}
        then: [{sned: {channel: sms}}]
"""
    )
    found = problems(tmp_path, text)
    assert found == [f"{tmp_path}/j.yaml:10: steps.2.on_timeout.1.then.0: unknown step type 'sned': "
                     "use one of wait, wait_until, wait_for, send, decide, if, split, exit"]  # fmt: skip


def test_yaml_syntax_errors_and_duplicate_keys(tmp_path: Path) -> None:
    assert problems(tmp_path, "id: x\nsteps: [\n")[0].startswith(f"{tmp_path}/j.yaml:3: not valid YAML")
    found = problems(tmp_path, VALID + "id: other\n")
    assert found == [f"{tmp_path}/j.yaml:6: id: key 'id' is given twice"]


def test_duplicate_journey_ids_and_step_ids(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    (tmp_path / "c.yaml").write_text(VALID.replace("id: cart", "id: cart\nversion: 2"))  # a new version is fine
    (tmp_path / "d.yaml").write_text(
        VALID.replace("id: cart", "id: steps")
        .replace("  - wait", "  - id: w\n    wait")
        .replace("  - send", "  - id: w\n    send")
    )
    found = [str(p) for p in load([tmp_path]).problems]
    assert found == [
        f"{tmp_path}/b.yaml:1: id: duplicate journey id 'cart' version 1 (also in {tmp_path}/a.yaml)",
        f"{tmp_path}/d.yaml:6: steps.1: duplicate step id 'w' (also at steps.0)",
    ]


def test_policy_file_problems(tmp_path: Path) -> None:
    found = problems(tmp_path, "default_timezone: Mars/Olympus\nmax_per_day: {email: -1}\n", "policy.yaml")
    assert found[0].endswith("policy.yaml:1: default_timezone: unknown time zone 'Mars/Olympus': "
                             "use an IANA name such as Europe/Rome or UTC")  # fmt: skip
    assert "policy.yaml:2: max_per_day.email: input should be greater than or equal to 0" in found[1]


def test_missing_paths_and_empty_files(tmp_path: Path) -> None:
    assert [str(p) for p in load([tmp_path / "nope"]).problems] == [f"{tmp_path}/nope: no such file or folder"]
    assert problems(tmp_path, "") == [f"{tmp_path}/j.yaml: the file is empty: a journey needs id, trigger and steps"]
    assert problems(tmp_path, "- 1\n") == [f"{tmp_path}/j.yaml:1: a journey must be a YAML mapping, got list"]
