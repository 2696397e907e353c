"""The `berth webhook` command: flags, certificates, and the configuration it can print."""

from __future__ import annotations

from pathlib import Path

import click

from berth.clierrors import BadInput
from berth.cliparams import ADDRESS


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="BerthConfiguration file: its webhook section, profiles and leaderElection's Lease.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="kubeconfig to read the Lease with (default: $KUBECONFIG, ~/.kube/config, in-cluster).",
)
@click.option("--bind-address", type=ADDRESS, default="127.0.0.1:9443", show_default=True)
@click.option("--path", "url_path", default="/mutate", show_default=True, help="Admission path.")
@click.option(
    "--tls-cert-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Serving certificate (PEM); re-read when the file changes.",
)
@click.option(
    "--tls-private-key-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The certificate's private key (PEM).",
)
@click.option(
    "--cert-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Without --tls-cert-file: make a CA and a serving certificate here (reused while "
    "valid); the caBundle is DIR/ca.crt.",
)
@click.option(
    "--tls-san",
    multiple=True,
    help="Another name or IP the generated certificate is valid for (repeatable).",
)
@click.option(
    "--print-webhook-configuration",
    "print_configuration",
    is_flag=True,
    help="Print the MutatingWebhookConfiguration for this webhook (URL and CA bundle filled "
    "in) as YAML, and exit.",
)
@click.option("--url", default=None, help="The URL to print (default: from --bind-address).")
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="The CA to print as caBundle with --tls-cert-file (default: the --cert-dir CA).",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning"]), default="info")
def webhook(
    config_path: str | None,
    kubeconfig: str | None,
    bind_address: str,
    url_path: str,
    tls_cert_file: str | None,
    tls_private_key_file: str | None,
    cert_dir: str | None,
    tls_san: tuple[str, ...],
    print_configuration: bool,
    url: str | None,
    ca_file: str | None,
    log_format: str,
    log_level: str,
) -> None:
    """Serve the mutating admission webhook that routes new pods to Berth while a Berth leader
    is healthy, and to default-scheduler otherwise (docs/running.md#fallback-to-the-default-
    scheduler)."""
    import asyncio

    import yaml

    from berth.config import load_config
    from berth.listener import bind_socket, server_tls
    from berth.telemetry import parse_address, setup_logging
    from berth.webhook.registration import webhook_configuration
    from berth.webhook.server import WebhookOptions, certificate_files, serve

    host, port = parse_address(bind_address)  # checked by ADDRESS
    if not url_path.startswith("/"):
        raise BadInput(f"--path: {url_path!r} must start with /")
    if bool(tls_cert_file) != bool(tls_private_key_file):
        raise BadInput("--tls-cert-file and --tls-private-key-file go together")
    ca_path: Path | None = Path(ca_file) if ca_file else None
    if not tls_cert_file:
        if not cert_dir:
            raise BadInput(
                "kube-apiserver calls webhooks over HTTPS only: give --tls-cert-file and "
                "--tls-private-key-file, or --cert-dir to make a certificate"
            )
        try:
            tls_cert_file, tls_private_key_file, made_ca = certificate_files(
                cert_dir=Path(cert_dir), hosts=[host, *tls_san]
            )
        except OSError as exc:
            raise BadInput(f"--cert-dir {cert_dir}: {exc.strerror or exc}") from None
        ca_path = ca_path or made_ca
    config = load_config(config_path)  # a ConfigError: one line per problem, exit 2
    for warning in config.warnings:
        click.echo(f"warning: {config_path}: {warning}", err=True)
    if print_configuration:
        shown = host if ":" not in host else f"[{host}]"
        target = url or f"https://{shown}:{port}{url_path}"
        bundle = ca_path.read_bytes() if ca_path else None
        click.echo(
            yaml.safe_dump(webhook_configuration(url=target, ca_bundle=bundle), sort_keys=False)
        )
        return
    assert tls_private_key_file is not None
    # Unusable certificates and a taken port fail now, in one line, before anything starts.
    server_tls(tls_cert_file, tls_private_key_file)
    if port:
        bind_socket(host, port).close()
    setup_logging(fmt=log_format, level=log_level)
    options = WebhookOptions(
        bind_address=bind_address,
        path=url_path,
        tls_cert_file=tls_cert_file,
        tls_key_file=tls_private_key_file,
    )
    raise SystemExit(asyncio.run(serve(config=config, kubeconfig=kubeconfig, options=options)))
