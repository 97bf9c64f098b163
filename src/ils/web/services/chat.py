"""AI chat use cases: start a conversation, ask a question, delete a conversation.

A question is stored first and its ``chat-response`` job names it by id, so the
question's text never sits in the job store; the answer arrives later as the
conversation's next message. The per-user rate limit lives here because the ai queue
runs ten jobs a minute for the whole platform: one user must not fill it. The answer is
queued as ``interactive`` demand: its company's quota and fair priority (ahead of every
manager's run) come from ``ils.jobs.fairness``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain import chat_queries
from ils.domain.companies import User
from ils.domain.content import Conversation, Message, MessageRole
from ils.errors import RateLimitedError
from ils.jobs.helpers import JobHelpers
from ils.jobs.model import JobRef

#: Questions one user may ask per minute, across conversations.
QUESTIONS_PER_MINUTE: Final = 5
TOO_MANY: Final = "too many questions in the last minute; wait for the answers"
#: Longest a title taken from the first question may be.
TITLE_LENGTH: Final = 100


async def start_conversation(
    session: AsyncSession, user: User, title: str | None, now: datetime
) -> Conversation:
    """A new, empty conversation of ``user`` in their current company."""
    conversation = Conversation(
        company_id=user.company_id,
        user_id=user.id,
        title=title,
        created_at=now,
        updated_at=now,
    )
    session.add(conversation)
    await session.flush()
    return conversation


async def delete_conversation(session: AsyncSession, user: User, conversation_id: str) -> None:
    """Delete the user's conversation and its messages.

    Raises:
        NotFoundError: unknown id, or a conversation of another user or company.
    """
    row = await chat_queries.get_conversation(session, user.id, user.company_id, conversation_id)
    await session.execute(delete(Message).where(Message.conversation_id == row.id))
    await session.delete(row)


async def ask(
    session: AsyncSession,
    helpers: JobHelpers,
    user: User,
    conversation_id: str,
    content: str,
    now: datetime,
) -> tuple[Message, JobRef]:
    """Store the question and queue its answer; a conversation without a title takes
    the question's first line.

    Raises:
        NotFoundError: unknown id, or a conversation of another user or company.
        RateLimitedError: the user asked :data:`QUESTIONS_PER_MINUTE` questions in the
            last minute, or their company reached its quota of chat answers on the ai
            queue (``QuotaExceededError``, ``ils.jobs.fairness``); nothing is stored or
            queued (the request's transaction rolls back).
    """
    conversation = await chat_queries.get_conversation(
        session, user.id, user.company_id, conversation_id
    )
    recent = await chat_queries.questions_since(session, user.id, now - timedelta(minutes=1))
    if recent >= QUESTIONS_PER_MINUTE:
        raise RateLimitedError(TOO_MANY)
    message = Message(
        conversation_id=conversation.id, role=MessageRole.USER, content=content, created_at=now
    )
    session.add(message)
    conversation.updated_at = now
    if conversation.title is None:
        conversation.title = content.splitlines()[0][:TITLE_LENGTH]
    await session.flush()
    ref = await helpers.on_demand("interactive").queue_chat_response(
        user.id, user.company_id, conversation.id, message.id, session=session
    )
    return message, ref
