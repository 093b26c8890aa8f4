# Osprey rules entry point for at-kafka's standard payload (--osprey-compatible with the
# default --payload-format=standard). See README.md in this directory.
Import(
  rules=[
    'models/account.sml',
    'models/base.sml',
    'models/event_metadata.sml',
    'models/identity.sml',
    'models/operation.sml',
  ],
)

Require(rule='rules/index.sml')
