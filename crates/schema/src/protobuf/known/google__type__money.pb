
google/type/money.protogoogle.type"<
Money
currency_code (	
units (
nanos (B]
com.google.typeB
MoneyProtoPZ6google.golang.org/genproto/googleapis/type/money;money¢GTPbproto3