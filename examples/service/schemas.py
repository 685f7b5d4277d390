"""Request and response bodies, with the original service's field names.

Amounts arrive as JSON numbers or strings (decoded exactly, see
:func:`examples.service.http.decode_json`) and leave as strings. Unknown request fields
are ignored, as the original service ignored them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AddItemRequest",
    "AdjustmentResponse",
    "CancelOrderRequest",
    "CancelOrderResponse",
    "CartItemResponse",
    "CartResponse",
    "CartSummaryResponse",
    "CartsAnalyticsResponse",
    "CreateCartRequest",
    "CreateInventoryItemRequest",
    "CreateOrderRequest",
    "CreatedItemResponse",
    "ExpiredResponse",
    "InventoryItemResponse",
    "InventorySummaryResponse",
    "MessageResponse",
    "OrderCreationResponse",
    "OrderItemResponse",
    "OrderLineRequest",
    "OrderResponse",
    "PhysicalCountRequest",
    "PhysicalCountResponse",
    "ReservationResponse",
    "ReserveBySkuRequest",
    "ReserveRequest",
    "ReservedResponse",
    "SagaResponse",
    "SagaRetryResponse",
    "SagaStatisticsResponse",
    "SagaStepResponse",
    "StockAdjustmentRequest",
    "TimelineEntryResponse",
    "UpdateInventoryItemRequest",
    "UpdateItemRequest",
    "UpdatedItemResponse",
]

Amount = Annotated[
    Decimal,
    Field(
        allow_inf_nan=False,
        description="An exact amount: a JSON number or a decimal string, e.g. 19.99 or '19.99'",
    ),
]
Text = Annotated[str, Field(min_length=1, max_length=256)]
Note = Annotated[str, Field(max_length=500)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]
Units = Annotated[int, Field(ge=1, le=1_000_000)]
Labels = Annotated[dict[Text, Annotated[str, Field(max_length=256)]], Field(max_length=50)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- inventory ---------------------------------------------------------------------------------


class CreateInventoryItemRequest(_Request):
    """A new SKU: its product, stock and price (``POST /inventory/items``)."""

    product_id: Text
    sku: Text
    variant_id: Text | None = None
    total_quantity: Count
    unit_price: Amount
    cost_price: Amount | None = None
    low_stock_threshold: Count = 10
    reorder_point: Count = 5
    reorder_quantity: Count = 100
    metadata: Labels | None = None
    name: Text | None = Field(default=None, description="Display name (default: metadata.name)")
    currency: str | None = Field(default=None, description="ISO 4217 (default: the service's)")


class CreatedItemResponse(BaseModel):
    inventory_id: str
    sku: str
    message: str


class UpdateInventoryItemRequest(_Request):
    """Price and thresholds; omitted fields keep their value (``PUT /inventory/items/{id}``)."""

    unit_price: Amount | None = None
    cost_price: Amount | None = None
    low_stock_threshold: Count | None = None
    reorder_point: Count | None = None
    reorder_quantity: Count | None = None
    status: str | None = Field(default=None, description="Only 'active' is supported")
    expected_version: int | None = Field(default=None, ge=1)


class UpdatedItemResponse(BaseModel):
    inventory_id: str
    version: int
    message: str


class InventoryItemResponse(BaseModel):
    inventory_id: str
    product_id: str
    variant_id: str | None
    sku: str
    name: str
    total_quantity: int
    reserved_quantity: int
    available_quantity: int
    unit_price: str
    cost_price: str | None
    currency: str
    status: str
    low_stock_threshold: int
    reorder_point: int
    reorder_quantity: int
    version: int
    created_at: str
    updated_at: str
    metadata: dict[str, str]
    is_low_stock: bool
    needs_reorder: bool
    active_reservations: int


class LowStockItemResponse(BaseModel):
    inventory_id: str
    product_id: str
    sku: str
    available_quantity: int
    low_stock_threshold: int
    reorder_point: int
    reorder_quantity: int


class InventorySummaryResponse(BaseModel):
    total_items: int
    active_items: int
    low_stock_items: int
    out_of_stock_items: int
    reorder_needed_items: int
    total_quantity: int
    reserved_quantity: int
    available_quantity: int
    total_value: dict[str, str] = Field(
        description="On-hand units at the listed price, by currency"
    )
    last_updated: str


class ReserveRequest(_Request):
    """Hold units of a product's variant for an order (``POST /inventory/reservations``)."""

    product_id: Text
    variant_id: Text | None = None
    order_id: Text
    customer_id: Text
    quantity: Units
    reservation_duration_minutes: Annotated[int, Field(ge=1, le=1440)] = 30


class ReserveBySkuRequest(_Request):
    """Hold units of a SKU for an order (``POST /inventory/reservations/by-sku``)."""

    sku: Text
    order_id: Text
    customer_id: Text
    quantity: Units
    reservation_duration_minutes: Annotated[int, Field(ge=1, le=1440)] = 30


class ReservedResponse(BaseModel):
    reservation_id: str
    inventory_id: str
    sku: str
    order_id: str
    customer_id: str
    quantity: int
    status: str
    expires_at: str
    message: str


class ReservationResponse(BaseModel):
    reservation_id: str
    inventory_id: str
    sku: str
    order_id: str
    quantity: int
    fulfilled_quantity: int
    outstanding_quantity: int
    status: str
    expires_at: str
    message: str


class StockAdjustmentRequest(_Request):
    """Add or remove units by hand (``POST /inventory/items/{id}/adjustments``)."""

    quantity_change: Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
    adjustment_type: Annotated[str, Field(min_length=1, max_length=64)]
    reason: Note = ""
    reference_id: Text | None = None


class AdjustmentResponse(BaseModel):
    inventory_id: str
    adjustment_type: str
    recorded_as: str
    quantity_change: int
    total_quantity: int
    available_quantity: int
    message: str


class PhysicalCountRequest(_Request):
    """The result of counting the shelf (``POST /inventory/items/{id}/physical-count``)."""

    physical_quantity: Count
    notes: Note | None = None
    auto_adjust: bool = True


class PhysicalCountResponse(BaseModel):
    inventory_id: str
    physical_quantity: int
    discrepancy: int
    total_quantity: int
    message: str


class ExpiredResponse(BaseModel):
    expired_count: int
    message: str


class MessageResponse(BaseModel):
    message: str


# --- carts -------------------------------------------------------------------------------------


class CreateCartRequest(_Request):
    """Open a cart; the owner defaults to the ``X-Customer-ID`` (or ``X-Session-ID``) header."""

    customer_id: Text | None = None
    session_id: Text | None = None
    currency: str | None = None


class AddItemRequest(_Request):
    """Add units of a product (or a SKU); the price is the catalogue's, never the client's."""

    product_id: Text | None = None
    variant_id: Text | None = None
    sku: Text | None = None
    quantity: Units
    product_name: str | None = Field(default=None, description="Ignored: the catalogue names it")
    unit_price: Amount | None = Field(default=None, description="Ignored: the catalogue prices it")
    category: str | None = None
    image_url: str | None = None


class UpdateItemRequest(_Request):
    """The line's new quantity; 0 removes it."""

    quantity: Annotated[int, Field(ge=0, le=999)]


class CartItemResponse(BaseModel):
    product_id: str | None
    variant_id: str | None
    sku: str
    product_name: str
    quantity: int
    unit_price: str
    subtotal: str
    discount: str
    tax: str
    total_price: str


class CartResponse(BaseModel):
    cart_id: str
    customer_id: str | None
    session_id: str | None
    status: str
    items: list[CartItemResponse]
    subtotal: str
    discount_amount: str
    tax_amount: str
    shipping_estimate: str
    total_amount: str
    currency: str
    item_count: int
    version: int
    order_id: str | None
    created_at: str
    updated_at: str
    expires_at: str | None


class CartSummaryResponse(BaseModel):
    cart_id: str
    customer_id: str | None
    status: str
    item_count: int
    subtotal: str
    tax_amount: str
    shipping_estimate: str
    total_amount: str
    currency: str
    created_at: str
    updated_at: str
    expires_at: str | None


# --- orders ------------------------------------------------------------------------------------


class OrderLineRequest(_Request):
    """A line of an order placed without a cart: a SKU, or a product (and variant)."""

    sku: Text | None = None
    product_id: Text | None = None
    variant_id: Text | None = None
    quantity: Units


class CreateOrderRequest(_Request):
    """Check a cart out (``cart_id``), or place ``items`` directly (``POST /orders``)."""

    cart_id: Text | None = None
    items: Annotated[list[OrderLineRequest], Field(min_length=1, max_length=100)] | None = None
    customer_id: Text | None = None
    currency: str | None = None
    discount_code: Text | None = None
    payment_method: Annotated[str, Field(max_length=64)] | None = Field(
        default=None, description="Accepted and not used: the demo gateway takes any"
    )
    shipping_address: Labels | None = Field(
        default=None, description="Accepted and not used: the demo carrier needs none"
    )
    idempotency_key: Text | None = Field(
        default=None, description="Same as the Idempotency-Key header (which wins if both)"
    )


class OrderCreationResponse(BaseModel):
    order_id: str
    saga_id: str
    status: str
    total_amount: str
    currency: str
    created_at: str


class OrderItemResponse(BaseModel):
    product_id: str | None
    variant_id: str | None
    sku: str
    product_name: str
    quantity: int
    unit_price: str
    subtotal: str
    discount: str
    tax: str
    total_price: str
    shipped_quantity: int
    returned_quantity: int


class OrderResponse(BaseModel):
    order_id: str
    customer_id: str
    status: str
    payment_status: str
    fulfilment_status: str
    items: list[OrderItemResponse]
    subtotal: str
    discount_amount: str
    tax_amount: str
    shipping_amount: str
    total_amount: str
    refunded_amount: str
    currency: str
    saga_id: str
    saga_status: str | None
    tracking_number: str | None
    carrier: str | None
    created_at: str
    updated_at: str


class CancelOrderRequest(_Request):
    reason: Text = "customer request"


class CancelOrderResponse(BaseModel):
    order_id: str
    outcome: str
    status: str
    message: str


# --- admin -------------------------------------------------------------------------------------


class SagaStepResponse(BaseModel):
    step_id: str
    step_name: str
    step_type: str
    status: str
    action: str
    compensation: str | None
    retry_count: int
    error_message: str | None


class TimelineEntryResponse(BaseModel):
    at: str
    version: int
    event: str
    step: str | None
    detail: str


class SagaResponse(BaseModel):
    saga_id: str
    saga_type: str
    version: int
    subject: str
    status: str
    correlation_id: str
    current_step: str
    current_step_index: int
    phase: str
    steps: list[SagaStepResponse]
    created_at: str
    updated_at: str
    completed_at: str | None
    error_message: str | None
    results: dict[str, dict[str, Any]]
    timeline: list[TimelineEntryResponse] | None = None


class SagaRetryResponse(BaseModel):
    saga_id: str
    status: str
    message: str


class SagaStatisticsResponse(BaseModel):
    total: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    by_type_and_status: dict[str, dict[str, int]]
    retries: int
    timeouts: int
    compensations: int
    operator_actions: int


class CartsAnalyticsResponse(BaseModel):
    total_carts: int
    active_carts: int
    abandoned_carts: int
    checked_out_carts: int
    abandonment_rate: float = Field(description="Abandoned over active carts, 4 decimals")
    by_status: dict[str, int]
