"""`warden`: run the stack, manage authorities, act as an authority."""
import click

from warden.cli.authority import authority
from warden.cli.authority_client import authority_client
from warden.cli.database import database
from warden.cli.disclosure import disclosure, seed
from warden.cli.legal import audit, policy, transparency
from warden.cli.moderation import moderation
from warden.cli.requests import keygen, submit
from warden.cli.stack import service, up
from warden.cli.topics import topics
from warden.runtime.settings import ConfigurationError


class _Commands(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:  # settings a process cannot start with: say which, no traceback
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Warden: lawful-request and search-safety back office."""


for command in (up, service, authority, authority_client, keygen, submit, topics, database, disclosure, seed, audit,
                transparency, policy, moderation):
    cli.add_command(command)

if __name__ == "__main__":
    cli()
