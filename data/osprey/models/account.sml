# #account events: $.account.*
Import(rules=['models/base.sml'])

AccountActive: bool = JsonData(
  path='$.account.active',
  required=False,
)

# takendown, suspended, deleted, deactivated, …; absent while active
AccountStatus: str = JsonData(
  path='$.account.status',
  required=False,
)

AccountSeq: int = JsonData(
  path='$.account.seq',
  required=False,
)
