"""The `line:<user or group id>` channel (SPEC §11 "Channels"): a push message of the LINE Messaging API.

`POST {LINE_API_URL}/v2/bot/message/push` with the channel access token (LINE_CHANNEL_TOKEN) as a
bearer token and the delivery's retry key as `X-Line-Retry-Key`: LINE runs a request with a given key
once, and answers a repeat of an accepted one with 409, so a retry after a timeout never pushes the
alert twice (a 409 counts as sent). The message is the alert's text, and an image message when the
sender made signed https links to the read's image (PUBLIC_URL is https, alert_images.py).
"""

import requests

from . import AlertMessage, ChannelError, ChannelSettings
from .render import render

PUSH_PATH = "/v2/bot/message/push"


def push_body(settings: ChannelSettings, to: str, message: AlertMessage) -> dict:
    """The push request's JSON: the text, then the image when there are https links to it."""
    # Within LINE's 5,000 characters (render cuts it).
    text = render(message, settings.language, settings.timezone, era=settings.date_era).text
    messages: list[dict] = [{"type": "text", "text": text}]
    if message.image_url and message.preview_url and \
            message.image_url.startswith("https://") and message.preview_url.startswith("https://"):
        messages.append({"type": "image", "originalContentUrl": message.image_url,
                         "previewImageUrl": message.preview_url})
    return {"to": to, "messages": messages}


def send(settings: ChannelSettings, to: str, message: AlertMessage, retry_key: str) -> None:
    """Push one alert to a LINE user, group or room; raise ChannelError (no token in it) if it did not go."""
    token = settings.line_token
    if not token:
        raise ChannelError("LINE_CHANNEL_TOKEN is not set")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "X-Line-Retry-Key": retry_key}
    url = settings.line_api_url.rstrip("/") + PUSH_PATH
    try:
        answer = requests.post(url, json=push_body(settings, to, message), headers=headers,
                               timeout=settings.timeout)
    except requests.RequestException as exc:
        raise ChannelError(_hide(f"the LINE API did not answer: {exc.__class__.__name__}", token)) from None
    if answer.status_code == 200:
        return
    if answer.status_code == 409 and _accepted_before(answer):
        return  # this retry key was accepted before: the push went (LINE "Retry failed API requests")
    said = _hide(_line_message(answer), token)
    if answer.status_code == 429 or answer.status_code >= 500:
        raise ChannelError(f"LINE answered {answer.status_code} (to be retried): {said}".rstrip(": "))
    raise ChannelError(f"LINE refused the push ({answer.status_code}): {said}".rstrip(": "))


def _accepted_before(answer: requests.Response) -> bool:
    """A 409 that says the retry key was accepted already (LINE sends the first request's id with it)."""
    return bool(answer.headers.get("X-Line-Accepted-Request-Id")) or \
        "retry key" in _line_message(answer).lower()


def _line_message(answer: requests.Response) -> str:
    """LINE's error `message` and the first of its `details`, on one short line."""
    try:
        body = answer.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    said = str(body.get("message") or "")
    details = body.get("details")
    if isinstance(details, list) and details and isinstance(details[0], dict):
        first = details[0]
        said += f" ({first.get('property', '')}: {first.get('message', '')})"
    return " ".join(said.split())[:200]


def _hide(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text
