from mdl.client import rollback_target
from mdl.registry.base import HistoryEntry


def h(alias, frm, to, action="promote"):
    return HistoryEntry(0, alias, frm, to, "u@h", "t", action)


def test_undo_stack():
    hist = [h("latest", None, "v1"), h("latest", "v1", "v2"), h("canary", None, "v9"), h("latest", "v2", "v3")]
    assert rollback_target(hist, "latest") == "v2"
    hist.append(h("latest", "v3", "v2", "rollback"))
    assert rollback_target(hist, "latest") == "v1"
    hist.append(h("latest", "v2", "v1", "rollback"))
    assert rollback_target(hist, "latest") is None
    assert rollback_target(hist, "canary") is None
    assert rollback_target([], "latest") is None
