# Osprey rules entry point for at-kafka's standard payload (--osprey-compatible with the
# default --payload-format=standard). See README.md in this directory.
Import(
  rules=[
    'models/base.sml',
    'models/operation.sml',
    'models/identity.sml',
    'models/account.sml',
    'models/event_metadata.sml',
  ],
)

Require(rule='rules/index.sml')
