# What every at-kafka event has: the account DID and the event's own time. The action name
# is 'operation#create', 'operation#update', 'operation#delete', 'identity', 'account',
# 'sync' or 'info'.
ActionName = GetActionName()

UserId: Entity[str] = EntityJson(
  type='UserId',
  path='$.did',
  required=False,
)

EventTime: str = JsonData(
  path='$.timestamp',
  required=False,
)

IsOperation = ActionName == 'operation#create' or ActionName == 'operation#update' or ActionName == 'operation#delete'

Second: int = 1
Minute: int = Second * 60
Hour: int = Minute * 60
Day: int = Hour * 24
Week: int = Day * 7
