"""plan_input: how data is fitted to a model's signature (no server needed)."""

import numpy as np
import pytest

from tfs_user.data.inputs import TO_NCHW, TO_NHWC, InputError, Signature, TensorSpec, plan_input
from tfs_user.settings import Settings
from tfs_user.protocols.tfs.messages import types_pb2


def _signature(shape, dt=types_pb2.DT_FLOAT, name="input"):
    return Signature({name: TensorSpec(name, dt, shape)})


def test_matching_data_needs_no_conversion():
    plan = plan_input(_signature((-1, 8, 8, 3)), Settings(), np.float32, (8, 8, 3))
    assert (plan.input_name, plan.dtype, plan.axes, plan.notices) == ("input", np.float32, None, ("input name: using the signature's only input 'input'",))


def test_nchw_file_for_nhwc_model_and_back():
    plan = plan_input(_signature((-1, 8, 8, 3)), Settings(input_name="input"), np.float32, (3, 8, 8))
    assert plan.axes == TO_NHWC
    assert plan.transform(np.zeros((2, 3, 8, 8), np.float32)).shape == (2, 8, 8, 3)
    plan = plan_input(_signature((-1, 3, 8, 8)), Settings(input_name="input"), np.float32, (8, 8, 3))
    assert plan.axes == TO_NCHW


def test_impossible_and_ambiguous_layouts_name_both_shapes():
    with pytest.raises(InputError) as info:
        plan_input(_signature((-1, 8, 8, 3)), Settings(), np.float32, (5, 5, 3))
    # no layout can fix frames of the wrong size: the message says what would (resize), not --layout
    assert str(info.value) == ("the data's frames have shape [5,5,3] but input 'input' expects [8,8,3] per frame "
                               "(no channel-axis move makes it fit); resize the images to that size, e.g. "
                               "python -m tfs_user.images PHOTOS_DIR --size 8 --layout NHWC -o imgs.npy")
    with pytest.raises(InputError) as info:
        plan_input(_signature((-1, 3, 224, 224)), Settings(), np.float32, (100, 100, 3))
    assert str(info.value).endswith("python -m tfs_user.images PHOTOS_DIR --size 224 --layout NCHW -o imgs.npy")
    with pytest.raises(InputError) as info:
        plan_input(_signature((-1, 16, 40)), Settings(), np.float32, (16, 30))
    assert "--layout" not in str(info.value) and "resize or crop" in str(info.value)
    # model frames [-1,4,-1], file frames [4,5,4]: as stored they do not fit, both moves do: here --layout chooses
    with pytest.raises(InputError, match=r"\[4,5,4\] but input 'input' expects \[-1,4,-1\] per frame \(ambiguous: "
                                         r"both channel-axis moves fit\); choose one with --layout nhwc-to-nchw or "
                                         r"--layout nchw-to-nhwc"):
        plan_input(_signature((-1, -1, 4, -1)), Settings(), np.float32, (4, 5, 4))


def test_keep_and_forced_layouts():
    assert plan_input(_signature((-1, 3, 8, 8)), Settings(layout="keep"), np.float32, (3, 8, 8)).axes is None
    with pytest.raises(InputError, match=r"frames have shape \[3,8,8\] but input 'input' expects \[8,8,3\] per frame "
                                         r"\(--layout keep sends them as stored\)"):
        plan_input(_signature((-1, 8, 8, 3)), Settings(layout="keep"), np.float32, (3, 8, 8))
    assert plan_input(_signature((-1, 8, 8, 3)), Settings(layout="nchw-to-nhwc"), np.float32, (3, 8, 8)).axes == TO_NHWC


def test_dtype_cast_and_forced_dtype():
    plan = plan_input(_signature((-1, 2)), Settings(input_name="input"), np.float64, (2,))
    assert plan.dtype == np.float32 and plan.notices == ("casting the file's float64 to float32 (input 'input' is DT_FLOAT)",)
    assert plan.transform(np.ones((1, 2), np.float64)).dtype == np.float32
    forced = plan_input(_signature((-1, 2)), Settings(input_name="input", dtype="float16"), np.float16, (2,))
    assert forced.dtype == np.float16 and "differs from the signature's DT_FLOAT" in forced.notices[0]


def test_no_signature_uses_the_options():
    plan = plan_input(None, Settings(), np.float64, (3, 8, 8))
    assert (plan.input_name, plan.dtype, plan.axes, plan.notices) == ("input", None, None, ())
    plan = plan_input(None, Settings(input_name="x", dtype="float32", layout="nchw-to-nhwc"), np.float64, (3, 8, 8))
    assert (plan.input_name, plan.dtype, plan.axes) == ("x", np.float32, TO_NHWC)


def test_several_inputs_need_a_name():
    signature = Signature({"a": TensorSpec("a", types_pb2.DT_FLOAT, (-1, 2)), "b": TensorSpec("b", types_pb2.DT_FLOAT, (-1, 2))})
    with pytest.raises(InputError, match=r"the model has 2 inputs \(a, b\); choose one with --input-name"):
        plan_input(signature, Settings(), np.float32, (2,))
    assert plan_input(signature, Settings(input_name="b"), np.float32, (2,)).input_name == "b"
