"""The notebooks' papermill parameters (semscale_lib.studies.parameters): each value checked against its annotation
and its rule before any work, a bad one named in one line."""
from __future__ import annotations

import pytest

from semscale_lib.data import DATASETS
from semscale_lib.models import MODELS
from semscale_lib.studies.parameters import RULES, ParameterError, check_parameters


def _namespace(**values):
    """A notebook's globals(): the values and their annotations, as a typed ``parameters`` cell leaves them."""
    annotations = {name: annotation for name, (annotation, _) in values.items()}
    return {"__annotations__": annotations, **{name: value for name, (_, value) in values.items()}}


def _message(**values) -> str:
    with pytest.raises(ParameterError) as error:
        check_parameters(_namespace(**values))
    return str(error.value)


GOOD = dict(dataset=(str, "fashion-mnist"), model=(str, "cnn-small"), epochs=(int, 16), seeds=(list, [0, 1, 2]),
            imbalance_factor=(float | None, 100.0), preset=(str | None, None), threads=(int | None, None),
            device=(str, "auto"), image_size=(int, 28), val_fraction=(float, 0.1), alpha=(float, 1),
            losses=(list, ["ce", "ldam"]), r_min=(float, 0.3), extra=(dict, {"a": 1}))


def test_good_parameters_pass():
    check_parameters(_namespace(**GOOD))                                 # nothing raised
    # float accepts an int; X | None accepts None; names without a rule are only type-checked
    check_parameters(_namespace(lr=(float, 1), threads=(int | None, None), anything=(str, "x")))


@pytest.mark.parametrize("values,expected", [
    (dict(image_size=(int, -4)), "image_size = -4: expected an integer ≥ 1"),
    (dict(dataset=(str, "cifar1000")), "dataset = 'cifar1000': expected one of the datasets (the base name; -lt "
                                       "comes from imbalance_factor): " + ", ".join(sorted(DATASETS))),
    (dict(dataset=(str, "mnist-lt")), "dataset = 'mnist-lt': expected one of the datasets"),
    (dict(seeds=(list, [0, 0])), "seeds = [0, 0]: expected a list of at least 1 seeds (integers ≥ 0), each once"),
    (dict(seeds=(list, [])), "seeds = []: expected a list of at least 1 seeds"),
    (dict(seeds=(list, [0, -1])), "seeds = [0, -1]: expected a list of at least 1 seeds (integers ≥ 0)"),
    (dict(epochs=(int, 0)), "epochs = 0: expected an integer ≥ 1"),
    (dict(epochs=(int, 2.0)), "epochs = 2.0: expected int"),             # the annotation first
    (dict(epochs=(int, True)), "epochs = True: expected int"),           # a bool is not an int here
    (dict(threads=(int | None, 0)), "threads = 0: expected an integer ≥ 1 or None"),
    (dict(threads=(int | None, "two")), "threads = 'two': expected int or NoneType"),
    (dict(model=(str, "vgg99")), "model = 'vgg99': expected one of the models: " + ", ".join(sorted(MODELS))),
    (dict(device=(str, "gpu")), "device = 'gpu': expected auto, cpu, cuda, cuda:N (a GPU index) or mps"),
    (dict(device=(str, "cuda:x")), "device = 'cuda:x': expected auto"),
    (dict(val_fraction=(float, 1)), "val_fraction = 1: expected a number ≥ 0 and < 1"),
    (dict(imbalance_factor=(float | None, 0.5)), "imbalance_factor = 0.5: expected a number ≥ 1 or None"),
    (dict(alpha=(float, float("nan"))), "alpha = nan: expected a number ≥ 1"),
    (dict(losses=(list, ["ce", "ce"])), "losses = ['ce', 'ce']: expected a list of at least 1 losses, each once"),
    (dict(train_sizes=(list, [5])), "train_sizes = [5]: expected a list of at least 2 sizes"),
    (dict(extra=(dict, [])), "extra = []: expected dict"),
    (dict(name=(str, 3)), "name = 3: expected str"),
])
def test_a_bad_value_is_named_with_what_is_expected(values, expected):
    assert _message(**values).startswith(expected)


def test_good_values_of_the_rules():
    for name in DATASETS:
        check_parameters(_namespace(dataset=(str, name)))
    for device in ("auto", "cpu", "mps", "cuda", "cuda:1"):
        check_parameters(_namespace(device=(str, device)))
    check_parameters(_namespace(preset=(str | None, "cpu-quick"), balanced_per_class=(int | None, None)))
    assert all(callable(rule) for rule in RULES.values())


def test_the_first_bad_parameter_in_declaration_order_and_names():
    namespace = _namespace(epochs=(int, 0), image_size=(int, -4))
    with pytest.raises(ParameterError, match="^epochs = 0"):
        check_parameters(namespace)
    with pytest.raises(ParameterError, match="^image_size = -4"):
        check_parameters(namespace, names=["image_size"])
    # a name declared but not assigned, or no annotations at all: nothing to check
    check_parameters({"__annotations__": {"epochs": int}})
    check_parameters({"epochs": 0})


def test_the_error_renders_as_one_line_in_a_notebook():
    with pytest.raises(ParameterError) as error:
        check_parameters(_namespace(image_size=(int, -4)))
    assert isinstance(error.value, ValueError)
    assert error.value._render_traceback_() == ["ParameterError: image_size = -4: expected an integer ≥ 1"]


def test_check_pairs_names_the_unknown_method():
    from semscale_lib.studies.parameters import ParameterError, check_pairs

    methods = {"CE": {}, "DSB-CE": {}}
    check_pairs([["DSB-CE", "CE"]], methods)
    with pytest.raises(ParameterError, match=r"\['DSB-CE \(weighted mean\)'\] is not among them"):
        check_pairs([["DSB-CE (weighted mean)", "CE"]], methods)
    with pytest.raises(ParameterError, match="treated, baseline"):
        check_pairs([["DSB-CE", "CE", "CE"]], methods)
