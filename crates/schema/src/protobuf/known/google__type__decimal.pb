
google/type/decimal.protogoogle.type"
Decimal
value (	Bc
com.google.typeBDecimalProtoPZ:google.golang.org/genproto/googleapis/type/decimal;decimal¢GTPbproto3