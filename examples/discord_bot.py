"""An example Discord bot for AutoCheckin's /discord API.

    pip install discord.py requests
    AUTOCHECKIN_URL=http://127.0.0.1:5000 DISCORD_TOKEN=... python examples/discord_bot.py

Commands: !register [name], !events, !attend <event_id>, !status, !help.
`CommandHandler` holds all the logic and talks HTTP only, so it is tested without
Discord; `main()` wires it to discord.py (imported only there).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import requests

HELP = (
    "**AutoCheckin commands**\n"
    "`!register [name]` register for attendance\n"
    "`!events` list events open for check-in now\n"
    "`!attend <event_id>` check in to an event\n"
    "`!status` your attendance history\n"
    "`!help` this message"
)


@dataclass(frozen=True)
class Author:
    discord_user_id: str
    display_name: str
    username: str


class AutoCheckinAPI:
    """The few /discord calls the bot makes."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 10):
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.timeout = timeout
        if api_key:
            self.session.headers["X-Discord-Key"] = api_key

    def _get(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=self.timeout)

    def register(self, author: Author, name: str) -> requests.Response:
        body = {
            "name": name,
            "discord_user_id": author.discord_user_id,
            "discord_username": author.username,
        }
        return self.session.post(
            f"{self.base_url}/discord/users/register", json=body, timeout=self.timeout
        )

    def active_events(self) -> requests.Response:
        return self._get("/discord/events/active")

    def attend(self, author: Author, event_id: int) -> requests.Response:
        return self.session.post(
            f"{self.base_url}/discord/attend/{event_id}",
            params={"discord_user_id": author.discord_user_id},
            timeout=self.timeout,
        )

    def history(self, author: Author) -> requests.Response:
        return self._get(f"/discord/attendance/{author.discord_user_id}")


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return f"AutoCheckin answered {response.status_code}"


class CommandHandler:
    """Turns a chat message into an API call and a reply; None for messages not for us."""

    def __init__(self, api: AutoCheckinAPI):
        self.api = api

    def handle(self, author: Author, content: str) -> str | None:
        words = content.strip().split()
        if not words or not words[0].startswith("!"):
            return None
        command, args = words[0].lower(), words[1:]
        try:
            if command == "!register":
                return self.register(author, " ".join(args) or author.display_name)
            if command == "!events":
                return self.events()
            if command == "!attend":
                return self.attend(author, args)
            if command == "!status":
                return self.status(author)
            if command == "!help":
                return HELP
        except requests.RequestException:
            return "AutoCheckin is unreachable right now. Try again in a minute."
        return None

    def register(self, author: Author, name: str) -> str:
        response = self.api.register(author, name)
        if response.status_code in (200, 201):  # 200 now; 201 from older servers
            return f"Registered as {response.json()['name']}. Use `!events` to see what's on."
        return f"Could not register: {_detail(response)}"

    def events(self) -> str:
        events = self.api.active_events().json()
        if not events:
            return "No events are open for check-in right now."
        lines = [f"`{e['id']}` **{e['title']}** (until {e['end_time']})" for e in events]
        return "Open for check-in:\n" + "\n".join(lines) + "\nUse `!attend <id>`."

    def attend(self, author: Author, args: list[str]) -> str:
        if len(args) != 1 or not args[0].isdigit():
            return "Usage: `!attend <event_id>` (see `!events`)."
        response = self.api.attend(author, int(args[0]))
        if response.status_code == 404:
            return _detail(response)
        body = response.json()
        return ("✅ " if body.get("success") else "⛔ ") + body.get("message", "")

    def status(self, author: Author) -> str:
        response = self.api.history(author)
        if response.status_code == 404:
            return _detail(response)
        body = response.json()
        if not body["attended_events"]:
            return "You have not attended any events yet."
        lines = [
            f"• {e['title']} ({e['status']}, {e['attended_at']})" for e in body["attended_events"]
        ]
        return f"You attended {body['total_attended']} events:\n" + "\n".join(lines)


def main() -> None:
    import discord  # noqa: PLC0415 - discord.py, needed only to run the bot

    handler = CommandHandler(
        AutoCheckinAPI(
            os.environ.get("AUTOCHECKIN_URL", "http://127.0.0.1:5000"),
            os.environ.get("DISCORD_API_KEY"),
        )
    )
    intents = discord.Intents.default()
    intents.message_content = True
    client = discord.Client(intents=intents)

    @client.event
    async def on_message(message: discord.Message) -> None:
        if message.author.bot:
            return
        author = Author(str(message.author.id), message.author.display_name, str(message.author))
        reply = await asyncio.to_thread(handler.handle, author, message.content)
        if reply:
            await message.channel.send(reply)

    client.run(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    main()
