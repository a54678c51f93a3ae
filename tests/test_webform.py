"""Start-form labels and order (tfs_user.webform), against ports of the page's three name functions.

The functions below are the regular expressions of Locust 2.47's web UI bundle
(``locust/webui/dist/assets/src-*.js``): ``camel`` turns the keys of ``extra_options`` into
field names, ``label`` turns a field name into its label, ``snake`` turns a field name into
the name it is posted under. The browser test (tests/test_webui.py) checks the real page.
"""

import re

import pytest

from tfs_user.web import form as web_form
from tfs_user.options import OPTIONS, TOPICS, form_labels, option_dest, topics


def camel(key):  # e.replace(/_([a-z0-9])/g, (e,t) => t.toUpperCase())
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), key)


def label(name):  # e.replace(/([a-z0-9])([A-Z0-9])/g, `$1 $2`).replace(/^./, e => e.toUpperCase())
    text = re.sub(r"([a-z0-9])([A-Z0-9])", r"\1 \2", name)
    return text[:1].upper() + text[1:]


def snake(name):  # e[0]===e[0].toUpperCase() ? e : e.replace(/([a-z0-9])([A-Z0-9])/g, `$1_$2`).toLowerCase()
    return name if name[0] == name[0].upper() else re.sub(r"([a-z0-9])([A-Z0-9])", r"\1_\2", name).lower()


def test_the_ports_reproduce_what_the_page_did_before():
    # seen in chromium before this change: the field of slo_p99_ms was labelled "Slo P9 9Ms", posted as slo_p9_9ms
    assert label(camel("slo_p99_ms")) == "Slo P9 9Ms" and snake(camel("slo_p99_ms")) == "slo_p9_9ms"
    assert label(camel("tfs_iterations")) == "Tfs Iterations"


def test_every_option_has_its_own_label():
    labels = [kwargs.get("label") for _, kwargs in OPTIONS]
    assert all(labels) and len(set(labels)) == len(labels), labels
    assert list(form_labels()) == [option_dest(flags, kwargs) for flags, kwargs in OPTIONS
                                   if kwargs.get("include_in_web_ui", True)]
    assert "demo_server" not in form_labels()  # it starts with the process: not offered on the form


@pytest.mark.parametrize("text", [kwargs["label"] for _, kwargs in OPTIONS] + ["a_b9C", "x", "Ünïcode p99"])
def test_each_label_is_shown_as_written_and_posted_back_unchanged(text):
    key = web_form.field_key(text)
    name = camel(key)
    assert name == key
    assert label(name).replace(web_form.JOINER, "") == text
    assert snake(name) == key


def test_labels_read_like_the_options():
    labels = form_labels()
    assert labels["slo_p99_ms"] == "SLO p99 (ms)" and labels["tfs_iterations"] == "Iterations per user"
    assert labels["batch_size"] == "Batch size" and labels["grpc_compression"] == "gRPC compression"


def test_fields_come_by_topic_frequent_ones_first():
    order = list(form_labels())
    grouped = topics()
    assert list(grouped) == list(TOPICS) and order == [d for dests in grouped.values() for d in dests if d in order]
    assert grouped["Model and data"][:2] == ["model_name", "images_numpy_path"]
    assert grouped["Load and capacity"][:2] == ["batch_size", "tfs_iterations"]
    assert grouped["SLOs and output"][:3] == ["slo_p99_ms", "slo_min_fps", "slo_max_fail_ratio"]
    rare = ["grpc_tls_ca", "grpc_tls_cert", "grpc_tls_key", "grpc_compression", "demo_server"]
    assert set(rare) <= set(grouped["Target and transport"]) and order[:2] == ["model_name", "images_numpy_path"]


def test_form_fields_put_ours_first_in_order_and_keep_other_plugins_fields():
    extra = {dest: {"default_value": i} for i, dest in enumerate(sorted(form_labels()))}
    extra = {"another_plugin_option": {"default_value": "x"}, **extra}
    fields = web_form.form_fields(extra)
    assert list(fields)[:-1] == list(web_form.field_keys().values())
    assert list(fields)[-1] == "another_plugin_option"
    assert fields[web_form.field_key("Batch size")] == {**extra["batch_size"], "help_text": "Load and capacity"}
    assert web_form.form_fields(fields) == fields  # a second pass changes nothing


def test_each_field_shows_its_topic_as_help():
    # the page shows "label (help text)" on one line: --help's texts were cut off with an ellipsis
    extra = {dest: {"default_value": "", "help_text": kwargs.get("help", "")}
             for dest, (_, kwargs) in zip(form_labels(), OPTIONS)}
    shown = web_form.form_fields(extra)
    assert shown[web_form.field_key("Batch size")]["help_text"] == "Load and capacity"
    assert shown[web_form.field_key("SLO p99 (ms)")]["help_text"] == "SLOs and output"
    assert {v["help_text"] for v in shown.values()} == set(TOPICS)


def test_an_empty_label_is_refused():
    with pytest.raises(ValueError, match="empty label"):
        web_form.field_key("")
