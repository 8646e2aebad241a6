
google/type/expr.protogoogle.type"P
Expr

expression (	
title (	
description (	
location (	BZ
com.google.typeB	ExprProtoPZ4google.golang.org/genproto/googleapis/type/expr;expr¢GTPbproto3