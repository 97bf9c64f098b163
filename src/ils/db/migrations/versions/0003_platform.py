"""The platform core: companies, users, patients, orders, billing, supply, marketplace.

Creates the tables of ``ils.domain`` (docs/platform.md). Enumerations are plain
strings, decimals (``Fixed2``) integer hundredths and times ``timestamptz`` on
PostgreSQL, so the types here are the ones the models' custom types store.

Revision ID: 0003_platform
Revises: 0002_outbox
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_platform"
down_revision = "0002_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "companies",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address_line1", sa.String(length=200), nullable=True),
        sa.Column("address_line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("postcode", sa.String(length=20), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("vat_number", sa.String(length=32), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("primary_color", sa.String(length=7), nullable=True),
        sa.Column("logo_text", sa.String(length=64), nullable=True),
        sa.Column("paper_size", sa.String(length=8), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
    )
    op.create_index(op.f("ix_companies_kind"), "companies", ["kind"], unique=False)
    op.create_table(
        "number_sequences",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("next_value", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("next_value >= 1", name=op.f("ck_number_sequences_next_value_positive")),
        sa.PrimaryKeyConstraint("scope", "kind", "year", name=op.f("pk_number_sequences")),
    )
    op.create_table(
        "ai_results",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_ai_results_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_results")),
    )
    op.create_index(
        "ix_ai_results_company_kind_day", "ai_results", ["company_id", "kind", "day"], unique=False
    )
    op.create_index(op.f("ix_ai_results_job_id"), "ai_results", ["job_id"], unique=False)
    op.create_table(
        "patients",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_patients_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("company_id", "reference", name="uq_patients_company_reference"),
    )
    op.create_index(
        "ix_patients_company_name",
        "patients",
        ["company_id", "last_name", "first_name"],
        unique=False,
    )
    op.create_table(
        "products",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("lead_time_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lead_time_days >= 0", name=op.f("ck_products_lead_time_non_negative")),
        sa.CheckConstraint(
            "unit_price_cents >= 0", name=op.f("ck_products_unit_price_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_products_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("company_id", "sku", name="uq_products_company_sku"),
    )
    op.create_index(
        "ix_products_company_category", "products", ["company_id", "category"], unique=False
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lower_case")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_users_company_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_index(op.f("ix_users_company_id"), "users", ["company_id"], unique=False)
    op.create_table(
        "connections",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("requester_id", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=32), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("requester_id <> target_id", name=op.f("ck_connections_not_self")),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["users.id"], name=op.f("fk_connections_decided_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["users.id"], name=op.f("fk_connections_requested_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"], ["companies.id"], name=op.f("fk_connections_requester_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["target_id"], ["companies.id"], name=op.f("fk_connections_target_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint("requester_id", "target_id", name="uq_connections_requester_target"),
    )
    op.create_index(op.f("ix_connections_decided_by"), "connections", ["decided_by"], unique=False)
    op.create_index(
        op.f("ix_connections_requested_by"), "connections", ["requested_by"], unique=False
    )
    op.create_index(
        "ix_connections_target_status", "connections", ["target_id", "status"], unique=False
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_conversations_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_conversations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    op.create_index(
        "ix_conversations_company_user", "conversations", ["company_id", "user_id"], unique=False
    )
    op.create_index(op.f("ix_conversations_user_id"), "conversations", ["user_id"], unique=False)
    op.create_table(
        "daily_sales",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("product_id", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.CheckConstraint("units >= 0", name=op.f("ck_daily_sales_units_non_negative")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_daily_sales_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_daily_sales_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_daily_sales")),
        sa.UniqueConstraint(
            "company_id", "product_id", "day", name="uq_daily_sales_company_product_day"
        ),
    )
    op.create_index(
        "ix_daily_sales_company_day", "daily_sales", ["company_id", "day"], unique=False
    )
    op.create_index(op.f("ix_daily_sales_product_id"), "daily_sales", ["product_id"], unique=False)
    op.create_table(
        "examinations",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=32), nullable=False),
        sa.Column("examiner_id", sa.String(length=32), nullable=True),
        sa.Column("examined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("va_right", sa.String(length=16), nullable=True),
        sa.Column("va_left", sa.String(length=16), nullable=True),
        sa.Column("right_sphere", sa.Integer(), nullable=True),
        sa.Column("right_cylinder", sa.Integer(), nullable=True),
        sa.Column("right_axis", sa.Integer(), nullable=True),
        sa.Column("right_add", sa.Integer(), nullable=True),
        sa.Column("left_sphere", sa.Integer(), nullable=True),
        sa.Column("left_cylinder", sa.Integer(), nullable=True),
        sa.Column("left_axis", sa.Integer(), nullable=True),
        sa.Column("left_add", sa.Integer(), nullable=True),
        sa.Column("right_k1", sa.Integer(), nullable=True),
        sa.Column("right_k2", sa.Integer(), nullable=True),
        sa.Column("right_k_axis", sa.Integer(), nullable=True),
        sa.Column("left_k1", sa.Integer(), nullable=True),
        sa.Column("left_k2", sa.Integer(), nullable=True),
        sa.Column("left_k_axis", sa.Integer(), nullable=True),
        sa.Column("iop_right", sa.Integer(), nullable=True),
        sa.Column("iop_left", sa.Integer(), nullable=True),
        sa.Column("slit_lamp_notes", sa.Text(), nullable=True),
        sa.Column("fundus_notes", sa.Text(), nullable=True),
        sa.Column("recommendations", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("iop_left >= 0", name=op.f("ck_examinations_iop_left_non_negative")),
        sa.CheckConstraint("iop_right >= 0", name=op.f("ck_examinations_iop_right_non_negative")),
        sa.CheckConstraint(
            "left_axis BETWEEN 1 AND 180", name=op.f("ck_examinations_left_axis_range")
        ),
        sa.CheckConstraint(
            "left_k_axis BETWEEN 0 AND 180", name=op.f("ck_examinations_left_k_axis_range")
        ),
        sa.CheckConstraint(
            "right_axis BETWEEN 1 AND 180", name=op.f("ck_examinations_right_axis_range")
        ),
        sa.CheckConstraint(
            "right_k_axis BETWEEN 0 AND 180", name=op.f("ck_examinations_right_k_axis_range")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_examinations_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["examiner_id"], ["users.id"], name=op.f("fk_examinations_examiner_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_examinations_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_examinations")),
    )
    op.create_index(
        "ix_examinations_company_examined",
        "examinations",
        ["company_id", "examined_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_examinations_examiner_id"), "examinations", ["examiner_id"], unique=False
    )
    op.create_index(
        op.f("ix_examinations_patient_id"), "examinations", ["patient_id"], unique=False
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_notifications_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("job_id", name=op.f("uq_notifications_job_id")),
    )
    op.create_index(
        "ix_notifications_company_created",
        "notifications",
        ["company_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_notifications_user_read", "notifications", ["user_id", "read_at"], unique=False
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("lab_id", sa.String(length=32), nullable=False),
        sa.Column("patient_id", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("held_from_status", sa.String(length=16), nullable=True),
        sa.Column("right_sphere", sa.Integer(), nullable=True),
        sa.Column("right_cylinder", sa.Integer(), nullable=True),
        sa.Column("right_axis", sa.Integer(), nullable=True),
        sa.Column("right_add", sa.Integer(), nullable=True),
        sa.Column("right_prism", sa.Integer(), nullable=True),
        sa.Column("right_prism_base", sa.String(length=8), nullable=True),
        sa.Column("left_sphere", sa.Integer(), nullable=True),
        sa.Column("left_cylinder", sa.Integer(), nullable=True),
        sa.Column("left_axis", sa.Integer(), nullable=True),
        sa.Column("left_add", sa.Integer(), nullable=True),
        sa.Column("left_prism", sa.Integer(), nullable=True),
        sa.Column("left_prism_base", sa.String(length=8), nullable=True),
        sa.Column("pd_binocular", sa.Integer(), nullable=True),
        sa.Column("pd_right", sa.Integer(), nullable=True),
        sa.Column("pd_left", sa.Integer(), nullable=True),
        sa.Column("seg_height_right", sa.Integer(), nullable=True),
        sa.Column("seg_height_left", sa.Integer(), nullable=True),
        sa.Column("lens_material", sa.String(length=64), nullable=True),
        sa.Column("lens_index", sa.Integer(), nullable=True),
        sa.Column("lens_design", sa.String(length=16), nullable=False),
        sa.Column("coatings", sa.JSON(), nullable=False),
        sa.Column("tint", sa.String(length=64), nullable=True),
        sa.Column("frame_brand", sa.String(length=100), nullable=True),
        sa.Column("frame_model", sa.String(length=100), nullable=True),
        sa.Column("frame_colour", sa.String(length=64), nullable=True),
        sa.Column("frame_box_a", sa.Integer(), nullable=True),
        sa.Column("frame_box_b", sa.Integer(), nullable=True),
        sa.Column("frame_dbl", sa.Integer(), nullable=True),
        sa.Column("frame_ed", sa.Integer(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("tracking_number", sa.String(length=64), nullable=True),
        sa.Column("carrier", sa.String(length=64), nullable=True),
        sa.Column("price_cents", sa.BigInteger(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("lab_id <> company_id", name=op.f("ck_orders_lab_is_not_practice")),
        sa.CheckConstraint("left_axis BETWEEN 1 AND 180", name=op.f("ck_orders_left_axis_range")),
        sa.CheckConstraint("left_prism >= 0", name=op.f("ck_orders_left_prism_non_negative")),
        sa.CheckConstraint("price_cents >= 0", name=op.f("ck_orders_price_non_negative")),
        sa.CheckConstraint("right_axis BETWEEN 1 AND 180", name=op.f("ck_orders_right_axis_range")),
        sa.CheckConstraint("right_prism >= 0", name=op.f("ck_orders_right_prism_non_negative")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_orders_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_orders_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["lab_id"], ["companies.id"], name=op.f("fk_orders_lab_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_orders_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("number", name=op.f("uq_orders_number")),
    )
    op.create_index("ix_orders_company_status", "orders", ["company_id", "status"], unique=False)
    op.create_index("ix_orders_created_at", "orders", ["created_at"], unique=False)
    op.create_index(op.f("ix_orders_created_by"), "orders", ["created_by"], unique=False)
    op.create_index("ix_orders_lab_status", "orders", ["lab_id", "status"], unique=False)
    op.create_index(op.f("ix_orders_patient_id"), "orders", ["patient_id"], unique=False)
    op.create_table(
        "purchase_orders",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("supplier_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("expected_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "supplier_id <> company_id", name=op.f("ck_purchase_orders_supplier_is_not_buyer")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_purchase_orders_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_purchase_orders_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"], ["companies.id"], name=op.f("fk_purchase_orders_supplier_id_companies")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_orders")),
        sa.UniqueConstraint("company_id", "number", name="uq_purchase_orders_company_number"),
    )
    op.create_index(
        "ix_purchase_orders_company_status",
        "purchase_orders",
        ["company_id", "status"],
        unique=False,
    )
    op.create_index(
        op.f("ix_purchase_orders_created_by"), "purchase_orders", ["created_by"], unique=False
    )
    op.create_index(
        "ix_purchase_orders_supplier_status",
        "purchase_orders",
        ["supplier_id", "status"],
        unique=False,
    )
    op.create_table(
        "stock_levels",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("product_id", sa.String(length=32), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("reorder_point", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_levels_on_hand_non_negative")),
        sa.CheckConstraint(
            "reorder_point >= 0", name=op.f("ck_stock_levels_reorder_point_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_stock_levels_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_stock_levels_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_levels")),
        sa.UniqueConstraint("company_id", "product_id", name="uq_stock_levels_company_product"),
    )
    op.create_index(
        op.f("ix_stock_levels_product_id"), "stock_levels", ["product_id"], unique=False
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
    )
    op.create_index(
        op.f("ix_user_sessions_expires_at"), "user_sessions", ["expires_at"], unique=False
    )
    op.create_index(op.f("ix_user_sessions_user_id"), "user_sessions", ["user_id"], unique=False)
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "customer_id <> company_id", name=op.f("ck_invoices_customer_is_not_issuer")
        ),
        sa.CheckConstraint("due_on >= issued_on", name=op.f("ck_invoices_due_after_issue")),
        sa.CheckConstraint(
            "payment_terms_days >= 0", name=op.f("ck_invoices_payment_terms_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_invoices_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["companies.id"], name=op.f("fk_invoices_customer_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_invoices_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("company_id", "number", name="uq_invoices_company_number"),
    )
    op.create_index(
        "ix_invoices_company_status", "invoices", ["company_id", "status"], unique=False
    )
    op.create_index(op.f("ix_invoices_customer_id"), "invoices", ["customer_id"], unique=False)
    op.create_index(op.f("ix_invoices_order_id"), "invoices", ["order_id"], unique=False)
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
    )
    op.create_index(
        "ix_messages_conversation_created",
        "messages",
        ["conversation_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "order_status_changes",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("changed_by", sa.String(length=32), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["changed_by"], ["users.id"], name=op.f("fk_order_status_changes_changed_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_status_changes_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_status_changes")),
    )
    op.create_index(
        op.f("ix_order_status_changes_changed_by"),
        "order_status_changes",
        ["changed_by"],
        unique=False,
    )
    op.create_index(
        op.f("ix_order_status_changes_order_id"), "order_status_changes", ["order_id"], unique=False
    )
    op.create_table(
        "purchase_order_lines",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("purchase_order_id", sa.String(length=32), nullable=False),
        sa.Column("product_id", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_purchase_order_lines_quantity_positive")),
        sa.CheckConstraint(
            "unit_price_cents >= 0", name=op.f("ck_purchase_order_lines_unit_price_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_purchase_order_lines_product_id_products"),
        ),
        sa.ForeignKeyConstraint(
            ["purchase_order_id"],
            ["purchase_orders.id"],
            name=op.f("fk_purchase_order_lines_purchase_order_id_purchase_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_purchase_order_lines")),
    )
    op.create_index(
        op.f("ix_purchase_order_lines_product_id"),
        "purchase_order_lines",
        ["product_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_purchase_order_lines_purchase_order_id"),
        "purchase_order_lines",
        ["purchase_order_id"],
        unique=False,
    )
    op.create_table(
        "uploaded_files",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("uploaded_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_uploaded_files_size_non_negative")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_uploaded_files_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_uploaded_files_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by"], ["users.id"], name=op.f("fk_uploaded_files_uploaded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploaded_files")),
    )
    op.create_index(
        "ix_uploaded_files_company_created",
        "uploaded_files",
        ["company_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_uploaded_files_order_id"), "uploaded_files", ["order_id"], unique=False
    )
    op.create_index(
        op.f("ix_uploaded_files_uploaded_by"), "uploaded_files", ["uploaded_by"], unique=False
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("invoice_id", sa.String(length=32), nullable=True),
        sa.Column("examination_id", sa.String(length=32), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_documents_size_non_negative")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_documents_version_positive")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_documents_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["examination_id"],
            ["examinations.id"],
            name=op.f("fk_documents_examination_id_examinations"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_documents_invoice_id_invoices")
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_documents_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
    )
    op.create_index("ix_documents_company_kind", "documents", ["company_id", "kind"], unique=False)
    op.create_index(
        op.f("ix_documents_examination_id"), "documents", ["examination_id"], unique=False
    )
    op.create_index(op.f("ix_documents_invoice_id"), "documents", ["invoice_id"], unique=False)
    op.create_index(op.f("ix_documents_job_id"), "documents", ["job_id"], unique=False)
    op.create_index(op.f("ix_documents_order_id"), "documents", ["order_id"], unique=False)
    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("vat_treatment", sa.String(length=16), nullable=False),
        sa.Column("vat_rate_bp", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "vat_treatment <> 'exempt' OR vat_rate_bp = 0",
            name=op.f("ck_invoice_lines_exempt_no_rate"),
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_invoice_lines_quantity_positive")),
        sa.CheckConstraint(
            "unit_price_cents >= 0", name=op.f("ck_invoice_lines_unit_price_non_negative")
        ),
        sa.CheckConstraint(
            "vat_rate_bp BETWEEN 0 AND 10000", name=op.f("ck_invoice_lines_vat_rate_range")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_invoice_lines_invoice_id_invoices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_lines")),
    )
    op.create_index(
        op.f("ix_invoice_lines_invoice_id"), "invoice_lines", ["invoice_id"], unique=False
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("invoice_id", sa.String(length=32), nullable=False),
        sa.Column("company_id", sa.String(length=32), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_payments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["company_id"], ["companies.id"], name=op.f("fk_payments_company_id_companies")
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"], ["invoices.id"], name=op.f("fk_payments_invoice_id_invoices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
    )
    op.create_index(op.f("ix_payments_company_id"), "payments", ["company_id"], unique=False)
    op.create_index(op.f("ix_payments_invoice_id"), "payments", ["invoice_id"], unique=False)


def downgrade() -> None:
    # Dependants first; dropping a table drops its indexes and constraints.
    for table in (
        "payments",
        "invoice_lines",
        "documents",
        "uploaded_files",
        "purchase_order_lines",
        "order_status_changes",
        "messages",
        "invoices",
        "user_sessions",
        "stock_levels",
        "purchase_orders",
        "orders",
        "notifications",
        "examinations",
        "daily_sales",
        "conversations",
        "connections",
        "users",
        "products",
        "patients",
        "ai_results",
        "number_sequences",
        "companies",
    ):
        op.drop_table(table)
