# #account events: $.account.*
Import(rules=['models/base.sml'])

AccountActive: Optional[bool] = JsonData(
  path='$.account.active',
  required=False,
)

# takendown, suspended, deleted, deactivated, …; absent while active
AccountStatus: Optional[str] = JsonData(
  path='$.account.status',
  required=False,
)

AccountSeq: Optional[int] = JsonData(
  path='$.account.seq',
  required=False,
)
