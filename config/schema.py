"""The root GraphQL schema: field names exactly as the portal contract writes them (no camelCase)."""

import graphene

from locations.graphql import LocationQueries


class Query(LocationQueries, graphene.ObjectType):
    pass


schema = graphene.Schema(query=Query, auto_camelcase=False)
