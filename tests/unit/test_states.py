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
