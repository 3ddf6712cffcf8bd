import pytest

from vmflow.states import TRANSITIONS, ActionNotAllowed, VmState, check_action, status


def test_status_names_match_nova() -> None:
    assert status("building", "scheduling") == "BUILD"
    assert status("active", None) == "ACTIVE"
    assert status("stopped", None) == "SHUTOFF"
    assert status("error", None) == "ERROR"
    assert status("deleted", None) == "DELETED"


def test_every_vm_state_has_a_status() -> None:
    for state in VmState:
        assert status(state, None) != "UNKNOWN"


def test_delete_allowed_from_every_live_state_but_not_twice() -> None:
    for state in VmState:
        if state is VmState.DELETED:
            with pytest.raises(ActionNotAllowed, match="allowed from"):
                check_action("delete", state)
        else:
            assert check_action("delete", state) is TRANSITIONS["delete"]


def test_docs_states_md_is_generated_from_the_table() -> None:
    from pathlib import Path

    from vmflow.states import markdown

    doc = Path(__file__).resolve().parents[2] / "docs" / "states.md"
    assert doc.read_text() == markdown(), "run: python -m vmflow.states > docs/states.md"


def test_reboot_statuses_override_vm_state() -> None:
    assert status("active", "rebooting") == "REBOOT"
    assert status("active", "rebooting_hard") == "HARD_REBOOT"
    assert status("active", "powering-off") == "ACTIVE"


@pytest.mark.parametrize("action,allowed", [
    ("start", {"stopped"}),
    ("stop", {"active", "rescued", "error"}),
    ("reboot-soft", {"active"}),
    ("reboot-hard", {"active", "stopped", "paused", "suspended", "error"}),
    ("pause", {"active"}), ("unpause", {"paused"}),
    ("suspend", {"active"}), ("resume", {"suspended"}),
    ("rescue", {"active", "stopped", "error"}), ("unrescue", {"rescued"}),
])
def test_nova_allowed_states(action: str, allowed: set[str]) -> None:
    for state in VmState:
        if state in allowed:
            check_action(action, state)
        else:
            with pytest.raises(ActionNotAllowed, match=f"Cannot '{action}'"):
                check_action(action, state)
