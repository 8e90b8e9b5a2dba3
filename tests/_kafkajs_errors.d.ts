/** The part of kafkajs 2.2.4's internal errors module (`src/errors.js`) that ./kafkajs_lost_broker_test.ts checks against. */
export function isRebalancing(error: { type?: string }): boolean;
