"""The acceptance test every plug-in must pass (after PyMoDAQ's): metadata, engine on a headless host, demo
data, CLI registration and a widget that builds and shuts down."""

from __future__ import annotations

import argparse
import re

import pytest

from app.core.frames import FrameSource
from app.core.host import HeadlessHost
from app.core.plugin_api import API_VERSION, Engine, Plugin, PluginWidget
from app.core.registry import discover
from app.core.zoo import Zoo

PLUGINS = discover().plugins


@pytest.fixture
def host(tmp_path):
    h = HeadlessHost(Zoo(), home=tmp_path)
    yield h
    h.shutdown()


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.info.id)
def test_metadata(plugin):
    assert isinstance(plugin, Plugin)
    info = plugin.info
    assert re.fullmatch(r"[a-z][a-z0-9_]*", info.id)
    assert info.name and info.version and info.api_version == API_VERSION
    assert all(isinstance(t, str) and "." in t for t in info.tasks)


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.info.id)
def test_engine_on_headless_host(plugin, host):
    engine = plugin.create_engine(host)
    assert isinstance(engine, Engine)
    source = engine.demo_source()
    if source is not None:
        assert isinstance(source, FrameSource)
        frame = source.read()
        assert frame is not None and frame.data.size > 0
        source.close()
    engine.close()


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.info.id)
def test_cli_registers(plugin):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd")
    before = set(sub.choices)
    plugin.add_cli(sub)
    for name in set(sub.choices) - before:
        assert sub.choices[name].format_help()


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.info.id)
def test_every_task_has_a_shipped_model(plugin):
    shipped = {c.task for c in Zoo().cards()}
    missing = [t for t in plugin.info.tasks if t not in shipped]
    assert not missing, f"{plugin.info.id}: no shipped model for {missing}"


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.info.id)
def test_widget_keeps_the_lifecycle(plugin, host, qtbot):
    """The PluginWidget lifecycle as behaviour: stop before start is harmless, start_demo starts, stop stops and
    start starts again (live widgets), shutdown ends every stream and job of the widget and may be repeated."""
    from PySide6.QtWidgets import QWidget

    engine = plugin.create_engine(host)
    widget = plugin.create_widget(host, engine)
    qtbot.addWidget(widget)
    assert isinstance(widget, QWidget) and isinstance(widget, PluginWidget)
    widget.show()
    widget.stop()
    widget.start_demo()
    if widget.running:
        widget.stop()
        widget.stop()
        assert not widget.running
        widget.start()
        assert widget.running
    streams = [s for s, *_ in host.streams]
    widget.shutdown()
    assert not widget.running
    assert all(not s.running for s in streams) and all(j.done for j in host.jobs)  # its threads are joined
    widget.shutdown()  # idempotent
    engine.close()
