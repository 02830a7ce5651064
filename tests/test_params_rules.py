"""Values are checked before anything is written: sizes are exact integers within a stated maximum,
data ranges stay inside float32, and the rules between parameters ("x-rules" in the schema
files) give one line naming the value set last."""
import json

import pytest

from torchclassics.errors import UserError
from torchclassics.params import packaged, rules, sources
from torchclassics.params.sources import resolve


@pytest.mark.parametrize("name", packaged.experiment_names())
def test_every_integer_valued_parameter_has_a_maximum(name):
    for key, rule in sources.schema(name)["properties"].items():
        if rules.integer_valued(rule):
            assert any("maximum" in option for option in [rule, *rule.get("anyOf", [])]), f"{name}: {key}"


@pytest.mark.parametrize("name, sets, message", [
    ("regression", ["hidden=1e20"], r"--set hidden=1e\+20: must be <= 65536"),
    ("regression", ["hidden=100000000000"], r"hidden=100000000000: must be <= 65536"),
    ("regression", ["n_points=10000000000"], r"n_points=10000000000: must be <= 10000000"),
    ("regression", ["batch_size=1e20"], r"batch_size=1e\+20: must be <= 1000000"),
    ("batchnorm", ["hidden=5000"], r"hidden=5000: must be <= 1024"),
    ("dqn_cartpole", ["memory=1e12"], r"memory=1000000000000.0: must be <= 10000000"),
    ("regression", ["noise=1e308"], r"noise=1e\+308: must be <= 1000000"),
    ("classification", ["centre=1e308"], r"centre=1e\+308: must be <= 1000000"),
    ("classification", ["centre=-1e308"], r"centre=-1e\+308: must be >= -1000000"),
    ("batchnorm", ["x_range=[-1e308, 1e308]"], r"x_range\[0\]=-1e\+308: must be >= -10000"),
    ("regression", ["lr=1e999"], r"lr=Infinity: not a finite number"),
])
def test_sizes_and_data_ranges_have_bounds(name, sets, message):
    with pytest.raises(UserError, match=message):
        resolve(name, sets=sets)


def test_integer_sizes_are_exact_integers_even_without_a_maximum():
    layers = sources.Layers("regression")
    schema = {**layers.schema, "properties": {**layers.rules, "hidden": {"type": "integer", "minimum": 1}}}
    layers.set("hidden", 1e20, sources.KEYWORD)
    with pytest.raises(UserError, match=r"keyword argument hidden=1e\+20: expected an integer, and a float this large"):
        rules.check(layers, schema)
    layers.set("hidden", 2.0 ** 52, sources.KEYWORD)
    rules.check(layers, schema)  # exact: accepted, and made an int
    assert resolve("regression", overrides={"hidden": 12.0})["hidden"] == 12
    assert resolve("regression", overrides={"batch_size": 10.0})["batch_size"] == 10  # null or an integer
    assert isinstance(resolve("regression", overrides={"batch_size": 10.0})["batch_size"], int)
    with pytest.raises(UserError, match="not a finite number"):
        resolve("regression", overrides={"lr": 10 ** 400})  # no float holds it


@pytest.mark.parametrize("name, sets, message", [
    ("batchnorm", ["x_range=10,-7"],
     r"--set x_range=\[10, -7\]: needs x_range\[0\] < x_range\[1\]: x_range is \[low, high\]"),
    ("batchnorm", ["x_range=3,3"], r"needs x_range\[0\] < x_range\[1\]"),
    ("batchnorm", ["n_points=10"],
     r"--set n_points=10: needs batch_size <= n_points when drop_last \(batch_size=64, drop_last=true\): no batch"),
    ("batchnorm", ["batch_size=3000"], r"--set batch_size=3000: needs batch_size <= n_points when drop_last"),
    ("dogs_vs_cats", ["crop_scale=0.9,0.5"],
     r"--set crop_scale=\[0.9, 0.5\]: needs crop_scale\[0\] <= crop_scale\[1\]: \[low, high\] with low <= high"),
    ("dqn_cartpole", ["learn_start=5000"],
     r"--set learn_start=5000: needs learn_start <= memory \(memory=2000\): the replay memory never holds"),
    ("dqn_cartpole", ["memory=100"], r"--set memory=100: needs learn_start <= memory \(learn_start=200\)"),
    ("dqn_cartpole", ["epochs=1", "learn_start=600"],
     r"--set learn_start=600: needs learn_start <= epochs \* 500 \(epochs=1\): an episode of CartPole-v1 lasts"),
])
def test_each_rule_between_parameters_is_one_line_blaming_the_value_set_last(name, sets, message):
    with pytest.raises(UserError, match=message):
        resolve(name, sets=sets)


def test_rules_between_parameters_hold_where_the_values_allow():
    assert resolve("batchnorm", sets=["n_points=10", "drop_last=false"])["n_points"] == 10  # the rule's "when"
    assert resolve("dqn_cartpole", sets=["epochs=1", "learn_start=500"])["learn_start"] == 500
    assert resolve("dogs_vs_cats", sets=["crop_scale=0.7,0.7"])["crop_scale"] == [0.7, 0.7]


def test_the_source_named_is_the_one_that_broke_the_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "experiments" / "dqn_cartpole" / "params.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"memory": 100}))
    with pytest.raises(UserError, match=r"experiments/dqn_cartpole/params.json: memory=100: needs learn_start <= mem"):
        resolve("dqn_cartpole")
    with pytest.raises(UserError, match=r"^keyword argument learn_start=150: needs learn_start <= memory \(memory=1"):
        resolve("dqn_cartpole", sets=["learn_start=120"], overrides={"learn_start": 150})


def test_a_rule_is_data_never_code():
    for text in ["__import__('os').system('true')", "memory if True else 0", "f(memory)", "memory <= 'a'",
                 "x_range[i] < 1", "1 < 2"]:
        with pytest.raises(ValueError):
            rules.parse_rule(text)
    rule = rules.CrossRule("a.b[1] * 2 + -c <= d / 2 < 10", "why")
    assert rule.keys == ["a", "c", "d"]
    assert rule.holds({"a": {"b": [0, 1]}, "c": 0, "d": 5}) and not rule.holds({"a": {"b": [0, 9]}, "c": 0, "d": 5})
    assert rule.holds({"a": None, "c": 0, "d": 5})  # a null value: the rule does not apply


def test_a_schema_files_rules_are_checked_when_it_is_read():
    with pytest.raises(UserError, match=r"mine/schema.json: x-rules: 'memory < nosuch' names nosuch"):
        rules.cross_rules({"x-rules": [{"require": "memory < nosuch", "because": ""}]}, "mine/schema.json", ["memory"])
    with pytest.raises(UserError, match=r"x-rules: 'open\(memory\)': Call is not allowed"):
        rules.cross_rules({"x-rules": [{"require": "open(memory)"}]}, "mine/schema.json", ["memory"])
    with pytest.raises(UserError, match=r"is not \{\"require\": RULE"):
        rules.cross_rules({"x-rules": ["memory < 3"]}, "mine/schema.json", ["memory"])


def test_optimizer_args_of_the_optimizers_experiment_name_real_optimizers():
    with pytest.raises(UserError, match=r"--set optimizer_args.Nadam: not a torch.optim optimizer; did you mean 'NAd"):
        resolve("optimizers", sets=["optimizer_args.Nadam.momentum_decay=0.004"])
    params = resolve("optimizers", sets=["optimizer_args.NAdam.momentum_decay=0.004"])
    assert params["optimizer_args"]["NAdam"] == {"momentum_decay": 0.004}


def test_every_size_bound_lets_the_smallest_and_the_default_settings_pass():
    # the smallest settings of tests/test_smallest_settings.py, and every search space's range ends
    assert resolve("dqn_cartpole", overrides={"epochs": 1, "learn_start": 8, "batch_size": 8, "memory": 100,
                                              "hidden": 8, "eval_episodes": 1, "gif_frames": 4})
    assert resolve("batchnorm", overrides={"epochs": 1, "n_points": 64, "n_test": 10, "batch_size": 16, "layers": 2,
                                           "hidden": 4, "gif_frames": 1})
    for name in packaged.experiment_names():
        path = packaged.packaged_file(name, "search.json")
        for key, spec in (json.loads(path.read_text()) if path.is_file() else {}).items():
            kind, low, high = spec.split(":")
            for end in (low, high):
                value = int(end) if kind == "int" else float(end)
                assert resolve(name, overrides={key: value})[key] == value


@pytest.mark.parametrize("module", ["torchclassics.params", "torchclassics.params.sources",
                                    "torchclassics.params.rules", "torchclassics.params.torch_names",
                                    "torchclassics.plugins", "torchclassics.plugins.scaffold", "torchclassics.registry",
                                    "torchclassics.config"])
def test_each_home_imports_alone_without_torch(module):
    import subprocess
    import sys

    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
