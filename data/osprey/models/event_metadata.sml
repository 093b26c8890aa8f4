# $.eventMetadata.*: only with at-kafka --plc-host … --event-metadata (else null, and every
# feature here is None). Profile fields also need --api-host.
Import(rules=['models/base.sml'])

PdsHost: Entity[str] = EntityJson(
  type='PdsHost',
  path='$.eventMetadata.pdsHost',
  required=False,
)

Handle: Entity[str] = EntityJson(
  type='Handle',
  path='$.eventMetadata.handle',
  required=False,
)

DidCreatedAt: str = JsonData(
  path='$.eventMetadata.didCreatedAt',
  required=False,
)

# seconds since the DID was created
AccountAgeSeconds: int = JsonData(
  path='$.eventMetadata.accountAge',
  required=False,
)

ProfileFollowersCount: int = JsonData(
  path='$.eventMetadata.profile.followersCount',
  required=False,
)

ProfileFollowsCount: int = JsonData(
  path='$.eventMetadata.profile.followsCount',
  required=False,
)

ProfilePostsCount: int = JsonData(
  path='$.eventMetadata.profile.postsCount',
  required=False,
)
