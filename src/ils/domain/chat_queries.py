"""Read model of AI chat: a user's conversations and their messages.

A conversation is its user's alone: every lookup filters on the user *and* their
current company, so someone else's conversation id answers
:class:`~ils.errors.NotFoundError` like an unknown one. Messages are read through a
conversation already found that way.

Waiting for an answer reads messages in short-lived sessions after the request's own
transaction has ended, so the position to read after is a plain
:class:`MessageCursor` (values, not a row that would need its session).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ils.domain.content import Conversation, Message, MessageRole
from ils.domain.paging import fetch_page
from ils.domain.scoping import one_or_not_found, user_scoped, user_scoped_getter


@dataclass(frozen=True)
class MessageCursor:
    """A message's place in its conversation: messages after it come later, or at the
    same instant with a greater id."""

    created_at: datetime
    message_id: str


#: ``get_conversation(session, user_id, company_id, conversation_id)``: the user's
#: conversation; :class:`~ils.errors.NotFoundError` for an unknown id or a conversation
#: of another user or company.
get_conversation = user_scoped_getter(Conversation)


async def list_conversations(
    session: AsyncSession, user_id: str, company_id: str, limit: int, offset: int
) -> tuple[list[Conversation], int]:
    """A page of the user's conversations, most recently active first, and the total."""
    order = (Conversation.updated_at.desc(), Conversation.id)
    query = user_scoped(Conversation, user_id, company_id)
    return await fetch_page(session, query, order, limit, offset)


async def message_cursor(
    session: AsyncSession, conversation_id: str, message_id: str
) -> MessageCursor:
    """Where message ``message_id`` of the conversation stands.

    Raises:
        NotFoundError: no such message in this conversation.
    """
    marker = await one_or_not_found(
        session,
        select(Message).where(Message.id == message_id, Message.conversation_id == conversation_id),
        "Message",
    )
    return MessageCursor(marker.created_at, marker.id)


async def conversation_messages(
    session: AsyncSession, conversation_id: str, after: MessageCursor | None = None
) -> list[Message]:
    """The conversation's messages in order, only those after ``after`` when given.

    ``conversation_id`` must come from :func:`get_conversation`: this read does not
    check the user again.
    """
    query = (
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.created_at, Message.id)
    )
    if after is not None:
        query = query.where(
            (Message.created_at > after.created_at)
            | ((Message.created_at == after.created_at) & (Message.id > after.message_id))
        )
    return list((await session.scalars(query)).all())


async def questions_since(session: AsyncSession, user_id: str, since: datetime) -> int:
    """How many questions the user asked after ``since``, in all their conversations
    (the per-user rate limit: the ai queue is shared by everyone)."""
    recent = await session.scalar(
        select(func.count(Message.id))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.user_id == user_id,
            Message.role == MessageRole.USER,
            Message.created_at > since,
        )
    )
    return int(recent or 0)
