# #identity events: $.identity.*
Import(rules=['models/base.sml'])

# "" when the event carries no handle
IdentityHandle: str = JsonData(
  path='$.identity.handle',
  required=False,
)

IdentitySeq: int = JsonData(
  path='$.identity.seq',
  required=False,
)
