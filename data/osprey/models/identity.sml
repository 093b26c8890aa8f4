# #identity events: $.identity.*
Import(rules=['models/base.sml'])

# "" when the event carries no handle
IdentityHandle: Optional[str] = JsonData(
  path='$.identity.handle',
  required=False,
)

IdentitySeq: Optional[int] = JsonData(
  path='$.identity.seq',
  required=False,
)
