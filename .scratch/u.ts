import { checkIdToUuid } from "../src/message.ts";
console.log(checkIdToUuid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
