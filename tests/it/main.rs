//! Behaviour of eventsys end to end: the real binary, a real RabbitMQ, a
//! real DynamoDB-compatible server. Run through `tests/scripts/test.sh`.

mod bad_input;
mod browser;
mod check_in;
mod contract;
mod delivery;
mod durability;
mod flash_sale;
mod holds;
mod idempotency;
mod lifecycle;
mod limits;
mod live;
mod load;
mod observability;
mod operations;
mod overload;
mod ownership;
mod poison;
mod registrations;
mod security;
mod waitlist;
mod webhooks;
