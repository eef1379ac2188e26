"""Settings declared once: every ChannelConfig field reaches the serve flags, its SEMCOM_* variable,
`semcom channel set`, the proto, and `semcom channel get` through a live service; the server's and the
sampler's settings reach their flags and variables the same way."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from semcom.channel_emulator import server as channel_server
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common.models.sampling import SamplerSettings
from semcom.common.serving.config import ServerSettings, boolean, env_name, setting_flags
from semcom.common.wire.pb import channel_emulator_pb2
from semcom.receiver import server as receiver_server
from semcom.tools import cli
from semcom.tools.client import describe_channel, get_channel_config

# A value of each flag type that no field has as its default.
SENTINELS = {float: "3.25", int: "7", str: "rician"}


def test_every_channel_setting_reaches_flags_env_cli_proto_and_channel_get(services, monkeypatch):
    declared = {f.name: f for f in fields(ChannelConfig)}
    flags = channel_server.CHANNEL_FLAGS
    assert list(flags) == list(declared)
    for name, (flag, kind, help) in flags.items():
        assert help == declared[name].metadata["help"]
        monkeypatch.setenv(env_name(flag), SENTINELS[kind])
    parser = argparse.ArgumentParser()
    channel_server.add_arguments(parser)
    _, options = channel_server.settings_from(parser.parse_args([]))
    config = options["config"]
    for name, (_, kind, _) in flags.items():
        assert getattr(config, name) == kind(SENTINELS[kind]), name  # env -> flag default -> config

    set_parser = cli.build_parser()
    parsed = set_parser.parse_args(["channel", "set", *(arg for flag, kind, _ in flags.values()
                                                        for arg in (flag, SENTINELS[kind]))])
    assert all(getattr(parsed, name) == kind(SENTINELS[kind]) for name, (_, kind, _) in flags.items())

    assert set(declared) <= set(channel_emulator_pb2.ChannelConfig.DESCRIPTOR.fields_by_name)
    served = ChannelConfig(model="rayleigh", snr_db=3.25, seed=7, queue_frames=7)
    channel = services.start(channel_server, receiver=services.address(services.receiver), config=served)
    try:
        line = describe_channel(get_channel_config(services.address(channel)))
    finally:
        services.loop.run(channel.stop(0))
    shown = dict(part.split("=", 1) for part in line.split())
    assert set(declared) <= set(shown)
    assert (shown["model"], shown["snr_db"], shown["seed"], shown["queue_frames"]) == ("rayleigh", "3.25", "7", "7")


# Fields whose values are checked: a value each pass that the others allow (DPM-Solver++ takes eta 0 only,
# so eta's own value, 3.25, goes through on the DDIM pass).
CHOICES = [{"method": "dpm++", "eta": "0"}, {"method": "ddim"}]


@pytest.mark.parametrize("server, settings_class, extract", [
    (receiver_server, SamplerSettings, lambda settings, extra: extra["sampler"]),
    (receiver_server, ServerSettings, lambda settings, extra: settings),
    (channel_server, ServerSettings, lambda settings, extra: settings),
])
def test_server_and_sampler_settings_are_declared_once_too(monkeypatch, server, settings_class, extract):
    flags = setting_flags(settings_class)
    for choices in CHOICES:
        values = {name: choices.get(name, {float: "3.25", int: "7", str: "somewhere", boolean: "0"}[kind])
                  for name, (_, kind, _) in flags.items()}
        for name, (flag, _, _) in flags.items():
            monkeypatch.setenv(env_name(flag), values[name])
        parser = argparse.ArgumentParser()
        server.add_arguments(parser)
        assert all(flag in parser.format_help() for flag, _, _ in flags.values())
        parsed = extract(*server.settings_from(parser.parse_args([])))
        assert all(getattr(parsed, name) == kind(values[name]) for name, (_, kind, _) in flags.items())
