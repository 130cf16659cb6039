"""One way operators report errors: an ExOmniError (written for a person) is shown as it is; anything
else is a bug, shown as one with its traceback in the system console. Both are recorded where the
panel shows the operator's jobs."""

import pytest

bpy = pytest.importorskip("bpy")

from exomni_blender.core.errors import UserError  # noqa: E402
from exomni_blender.ui import jobs  # noqa: E402
from exomni_blender.ui.common import ExOmniOperator  # noqa: E402

pytestmark = pytest.mark.blender


class EXOMNI_OT_test_fails(ExOmniOperator, bpy.types.Operator):
    bl_idname = "exomni.test_fails"
    bl_label = "Fails"
    kind = "errors_test"
    raise_what: bpy.props.StringProperty()

    def run(self, context):
        if self.raise_what == "user":
            raise UserError("Type a line for the head to say.")
        if self.raise_what == "bug":
            return {"FINISHED"} if 1 / 0 else None  # a bug: ZeroDivisionError
        self.report({"INFO"}, "fine")


@pytest.fixture
def operator(capsys):
    jobs.shutdown()
    bpy.utils.register_class(EXOMNI_OT_test_fails)
    yield bpy.ops.exomni.test_fails
    bpy.utils.unregister_class(EXOMNI_OT_test_fails)
    jobs.shutdown()


def test_an_error_written_for_a_person_is_shown_as_it_is(operator, capsys):
    with pytest.raises(RuntimeError) as raised:  # the bpy module turns an ERROR report into RuntimeError
        operator(raise_what="user")
    assert str(raised.value).strip() == "Error: Type a line for the head to say."
    job = jobs.latest("errors_test")
    assert job.state == jobs.FAILED and job.error == "Type a line for the head to say."
    assert "Traceback" not in capsys.readouterr().err


def test_any_other_exception_is_reported_as_a_bug_with_its_traceback(operator, capsys):
    with pytest.raises(RuntimeError) as raised:
        operator(raise_what="bug")
    assert "ZeroDivisionError: division by zero (details in the system console)" in str(raised.value)
    assert jobs.latest("errors_test").error == "ZeroDivisionError: division by zero (details in the system console)"
    assert "Traceback" in capsys.readouterr().err


def test_an_operator_that_works_finishes(operator):
    assert operator(raise_what="") == {"FINISHED"}
    assert jobs.latest("errors_test") is None


def test_every_add_on_operator_that_can_fail_reports_through_the_one_base(registered_scene):
    """Cancel buttons only set a flag; every other operator goes through ExOmniOperator."""
    import exomni_blender.ui as ui

    operators = [cls for module in ui._modules() for part in _parts(module) for cls in getattr(part, "CLASSES", ())
                 if issubclass(cls, bpy.types.Operator)]
    assert len(operators) >= 20
    plain = {cls.bl_idname for cls in operators if not issubclass(cls, ExOmniOperator)}
    assert plain == {"exomni.cancel", "exomni.dialogue_cancel", "exomni.retarget_row_add",
                     "exomni.retarget_row_remove", "exomni.retarget_term_add", "exomni.retarget_term_remove"}


def _parts(module):
    parts = getattr(module, "_parts", None)
    return parts() if parts else [module]
