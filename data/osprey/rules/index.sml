# Two example rules over at-kafka's standard paths; replace them with your own.
Import(
  rules=[
    'models/account.sml',
    'models/base.sml',
    'models/event_metadata.sml',
    'models/operation.sml',
  ],
)

TakenDownRule = Rule(
  when_all=[
    ActionName == 'account',
    AccountStatus == 'takendown',
  ],
  description='The account was taken down by its host',
)

# Needs at-kafka --plc-host … --event-metadata (accountAge comes from the PLC audit log).
NewAccountPostRule = Rule(
  when_all=[
    ActionName == 'operation#create',
    Collection == 'app.bsky.feed.post',
    AccountAgeSeconds < Day,
  ],
  description='A post by an account created less than a day ago',
)

WhenRules(
  rules_any=[TakenDownRule],
  then=[
    LabelAdd(entity=UserId, label='taken-down'),
  ],
)

WhenRules(
  rules_any=[NewAccountPostRule],
  then=[
    LabelAdd(entity=UserId, label='new-account-poster'),
  ],
)
