# One record operation: $.operation.* of at-kafka's standard payload.
Import(rules=['models/base.sml'])

OperationKind: Optional[str] = JsonData(
  path='$.operation.action',
  required=False,
)

IsCreate = OperationKind == 'create'
IsUpdate = OperationKind == 'update'
IsDelete = OperationKind == 'delete'

Collection: str = JsonData(
  path='$.operation.collection',
  required=False,
)

Rkey: str = JsonData(
  path='$.operation.rkey',
  required=False,
)

# at://did/collection/rkey
RecordUri: Entity[str] = EntityJson(
  type='RecordUri',
  path='$.operation.uri',
  required=False,
)

# "" for deletes
Cid: str = JsonData(
  path='$.operation.cid',
  required=False,
)

RecordPath: str = JsonData(
  path='$.operation.path',
  required=False,
)

RecordType: str = JsonData(
  path='$.operation.record."$type"',
  required=False,
)

# app.bsky.feed.post
PostText: str = JsonData(
  path='$.operation.record.text',
  required=False,
)

# like and repost: subject = {uri, cid}; follow and block: subject = "did:…"
SubjectUri: Optional[str] = JsonData(
  path='$.operation.record.subject.uri',
  required=False,
)

SubjectRaw: Optional[str] = JsonData(
  path='$.operation.record.subject',
  required=False,
  coerce_type=True,
)

Subject: str = ResolveOptional(optional_value=SubjectUri, default_value=SubjectRaw)

ReplyParentUri: str = JsonData(
  path='$.operation.record.reply.parent.uri',
  required=False,
)

RecordCreatedAt: str = JsonData(
  path='$.operation.record.createdAt',
  required=False,
)

# app.bsky.actor.profile
ProfileDisplayName: str = JsonData(
  path='$.operation.record.displayName',
  required=False,
)

ProfileDescription: str = JsonData(
  path='$.operation.record.description',
  required=False,
)
