"""The guides' own sample clients, copied verbatim from the seed documents.

000 (OneTap guide): `OneTapIntegration`. 001 (attendance guide): `HustleWebhookClient`,
the legacy `record_attendance` function and `generate_signature`. 004 (events guide): the
aiohttp `DiscordBot` example. The only change is
that the legacy function's hard-coded URL reads `LEGACY_URL`, so a test can point it
at a live server.
"""

# ruff: noqa
import requests
import json
from datetime import datetime

LEGACY_URL = "http://your-server:8000/api/webhook/attendance/"


class OneTapIntegration:
    def __init__(self, webhook_url):
        self.webhook_url = webhook_url
    
    def create_student(self, student_id, email, first_name, last_name, is_admin=False):
        payload = {
            "action": "create_student",
            "data": {
                "student_identifier": student_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "is_admin": is_admin
            },
            "source": "onetap_checkin"
        }
        return self._send_webhook(payload)
    
    def create_event(self, name, date, event_type="General", points=0, description=""):
        payload = {
            "action": "create_event",
            "data": {
                "event_name": name,
                "event_date": date.isoformat() + "Z",
                "event_type": event_type,
                "points": points,
                "description": description
            },
            "source": "onetap_checkin"
        }
        return self._send_webhook(payload)
    
    def record_attendance(self, student_id, event_id):
        payload = {
            "action": "record_attendance",
            "data": {
                "student_identifier": student_id,
                "event_identifier": event_id
            },
            "source": "onetap_checkin"
        }
        return self._send_webhook(payload)
    
    def _send_webhook(self, payload):
        response = requests.post(
            self.webhook_url,
            json=payload,
            headers={'Content-Type': 'application/json'}
        )
        return response.json()


class HustleWebhookClient:
    def __init__(self, base_url="http://your-server:8000/api/webhook/unified/"):
        self.base_url = base_url
    
    def create_student(self, student_id, email, first_name, last_name, is_admin=False):
        """Create a new student."""
        payload = {
            "type": "student",
            "action": "create",
            "data": {
                "student_identifier": student_id,
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "is_admin": is_admin
            },
            "source": "python_client"
        }
        return requests.post(self.base_url, json=payload).json()
    
    def create_event(self, name, date, event_type="General", points=0, description="", location=""):
        """Create a new event."""
        payload = {
            "type": "event",
            "action": "create",
            "data": {
                "event_name": name,
                "event_date": date.isoformat() + "Z",
                "event_type": event_type,
                "points": points,
                "description": description,
                "location": location
            },
            "source": "python_client"
        }
        return requests.post(self.base_url, json=payload).json()
    
    def record_attendance(self, student_id, event_id):
        """Record student attendance."""
        payload = {
            "type": "attendance",
            "action": "create",
            "data": {
                "student_identifier": student_id,
                "event_identifier": event_id
            },
            "source": "python_client"
        }
        return requests.post(self.base_url, json=payload).json()


def record_attendance(student_id, event_id):
    url = LEGACY_URL
    payload = {
        "student_identifier": student_id,
        "event_identifier": event_id,
        "source": "my_attendance_app"
    }
    
    response = requests.post(url, json=payload)
    return response.json()


import hmac
import hashlib

def generate_signature(payload, secret):
    return hmac.new(
        secret.encode('utf-8'),
        payload.encode('utf-8'),
        hashlib.sha256
    ).hexdigest()


# 004 (events and Discord guide): the "Discord Bot Integration Example", verbatim.
import aiohttp

# Example Discord bot integration
class DiscordBot:
    def __init__(self, api_base_url: str = "http://localhost:8000"):
        self.api_base_url = api_base_url
    
    async def attend_event(self, discord_user_id: str, event_id: int):
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{self.api_base_url}/discord/attend/{event_id}",
                params={"discord_user_id": discord_user_id}
            ) as response:
                return await response.json()
