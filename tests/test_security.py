"""TLS, mutual TLS and the admin token, through real servers on port 0 (a real TLS handshake on
loopback) with certificates made by `semcom certs`."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import EventLoopThread, settings_for_tests
from helpers import assert_rpc_error, encoded_frame, sample_png
from semcom.channel_emulator import server as channel_server
from semcom.channel_emulator.emulator import ChannelConfig
from semcom.common.serving import rpc
from semcom.common.serving.rpc import sync_channel
from semcom.common.serving.tls import TlsFiles
from semcom.common.wire.pb import channel_emulator_pb2 as pb
from semcom.common.wire.pb import (
    channel_emulator_pb2_grpc, receiver_pb2, receiver_pb2_grpc, transmitter_pb2, transmitter_pb2_grpc,
)
from semcom.receiver import server as receiver_server
from semcom.tools import cli
from semcom.tools.certs import make_certificates
from semcom.transmitter import server as transmitter_server


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("certs")
    make_certificates(folder)
    return folder


def files(folder, name, mutual=True) -> dict:
    return {"tls_cert": str(folder / f"{name}.pem"), "tls_key": str(folder / f"{name}-key.pem"),
            "tls_ca": str(folder / "ca.pem") if mutual else ""}


def client(folder, name="client") -> TlsFiles:
    return TlsFiles(str(folder / f"{name}.pem"), str(folder / f"{name}-key.pem"), str(folder / "ca.pem"))


@pytest.fixture(scope="module")
def secure_chain(certificates):
    """The three services with mutual TLS on every hop, and an admin token on the channel emulator."""
    loop = EventLoopThread()
    receiver = loop.run(receiver_server.start(settings_for_tests(**files(certificates, "receiver"))))
    channel = loop.run(channel_server.start(
        settings_for_tests(**files(certificates, "channel"), admin_token="s3cret"),
        receiver=f"localhost:{receiver.port}", config=ChannelConfig(snr_db=20.0, seed=1)))
    transmitter = loop.run(transmitter_server.start(settings_for_tests(**files(certificates, "transmitter")),
                                                    channel=f"localhost:{channel.port}"))
    yield transmitter, channel
    for server in (transmitter, channel, receiver):
        loop.run(server.stop(0))
    loop.close()


def test_the_chain_runs_with_mutual_tls_on_every_hop(secure_chain, certificates):
    transmitter, _ = secure_chain
    with sync_channel(f"localhost:{transmitter.port}", tls=client(certificates)) as channel:
        response = transmitter_pb2_grpc.TransmitterStub(channel).Transmit(
            transmitter_pb2.TransmitRequest(image=sample_png(), codec="linear_analog"), timeout=30)
    assert response.quality.psnr_db > 20  # through transmitter, channel and receiver, each hop over mTLS


@pytest.mark.parametrize("how", ["plaintext", "no client certificate", "another CA"])
def test_a_client_without_the_right_certificate_is_refused(secure_chain, certificates, tmp_path, how):
    transmitter, _ = secure_chain
    if how == "another CA":
        make_certificates(tmp_path)
    tls = {"plaintext": TlsFiles(), "no client certificate": TlsFiles(ca=str(certificates / "ca.pem")),
           "another CA": client(tmp_path)}[how]
    with sync_channel(f"localhost:{transmitter.port}", tls=tls) as channel:
        stub = transmitter_pb2_grpc.TransmitterStub(channel)
        assert_rpc_error(lambda: stub.Transmit(transmitter_pb2.TransmitRequest(image=sample_png()), timeout=5),
                         grpc.StatusCode.UNAVAILABLE)


def test_configure_needs_the_admin_token_and_a_refusal_changes_nothing(secure_chain, certificates):
    _, channel_server_ = secure_chain
    with sync_channel(f"localhost:{channel_server_.port}", tls=client(certificates)) as channel:
        stub = channel_emulator_pb2_grpc.ChannelEmulatorStub(channel)
        before = stub.GetConfig(pb.GetConfigRequest(), timeout=5)
        assert_rpc_error(lambda: stub.Configure(pb.ChannelConfig(snr_db=-5.0), timeout=5),
                         grpc.StatusCode.UNAUTHENTICATED, "needs an admin token")
        assert_rpc_error(lambda: stub.Configure(pb.ChannelConfig(snr_db=-5.0), timeout=5,
                                                metadata=(("authorization", "Bearer wrong"),)),
                         grpc.StatusCode.PERMISSION_DENIED, "not the configured one")
        assert stub.GetConfig(pb.GetConfigRequest(), timeout=5) == before  # refused: nothing changed
        changed = stub.Configure(pb.ChannelConfig(snr_db=7.0), timeout=5,
                                 metadata=(("authorization", "Bearer s3cret"),))
        assert changed.snr_db == 7.0


def test_the_cli_calls_over_mutual_tls_with_the_token(secure_chain, certificates, capsys, monkeypatch):
    monkeypatch.setattr(rpc, "client_tls", rpc.client_tls)  # cli.main sets it for the process: restored after
    _, channel_server_ = secure_chain
    security = ["--tls-ca", str(certificates / "ca.pem"), "--tls-cert", str(certificates / "client.pem"),
                "--tls-key", str(certificates / "client-key.pem")]
    address = f"localhost:{channel_server_.port}"
    assert cli.main([*security, "channel", "set", "--address", address, "--snr-db", "12", "--token", "s3cret"]) == 0
    assert "snr_db=12" in capsys.readouterr().out
    assert cli.main([*security, "channel", "set", "--address", address, "--snr-db", "3"]) == 1
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_a_half_given_key_pair_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="--tls-cert and --tls-key go together"):
        TlsFiles(cert=str(tmp_path / "x.pem")).server_credentials()
    with pytest.raises(FileNotFoundError, match="semcom certs"):
        TlsFiles(ca=str(tmp_path / "missing.pem")).channel_credentials()


def test_a_pool_of_receivers_listed_by_ip_runs_over_mutual_tls(certificates):
    # No one address names a list: its receivers' certificates are checked against the name 'receiver'.
    loop = EventLoopThread()
    receivers = [loop.run(receiver_server.start(settings_for_tests(**files(certificates, "receiver"))))
                 for _ in range(2)]
    channel = loop.run(channel_server.start(settings_for_tests(**files(certificates, "channel")),
                                            receiver=",".join(f"127.0.0.1:{r.port}" for r in receivers)))
    try:
        with sync_channel(f"localhost:{channel.port}", tls=client(certificates)) as secure:
            frame = encoded_frame()
            stub = channel_emulator_pb2_grpc.ChannelEmulatorStub(secure)
            for _ in range(4):
                assert stub.Forward(pb.ForwardRequest(frame=frame), timeout=30).decoded.image.shape
    finally:
        for server in (channel, *receivers):
            loop.run(server.stop(0))
        loop.close()


def test_the_health_port_answers_health_alone_in_plaintext(certificates):
    # Kubernetes' gRPC probes cannot do TLS: --health-port serves grpc.health.v1 and nothing else, in plaintext.
    loop = EventLoopThread()
    receiver = loop.run(receiver_server.start(settings_for_tests(**files(certificates, "receiver"), health_port=0)))
    try:
        assert receiver.health_port > 0
        with sync_channel(f"127.0.0.1:{receiver.health_port}", tls=TlsFiles()) as plaintext:
            status = health_pb2_grpc.HealthStub(plaintext).Check(
                health_pb2.HealthCheckRequest(service="semcom.v1.Receiver"), timeout=5)
            assert status.status == health_pb2.HealthCheckResponse.SERVING
            decode = receiver_pb2_grpc.ReceiverStub(plaintext).Decode
            assert_rpc_error(lambda: decode(receiver_pb2.DecodeRequest(), timeout=5), grpc.StatusCode.UNIMPLEMENTED)
        with sync_channel(f"127.0.0.1:{receiver.port}", tls=TlsFiles()) as plaintext:  # the gRPC port: mTLS only
            assert_rpc_error(lambda: health_pb2_grpc.HealthStub(plaintext).Check(
                health_pb2.HealthCheckRequest(), timeout=3), grpc.StatusCode.UNAVAILABLE)
    finally:
        loop.run(receiver.stop(0))
        loop.close()
